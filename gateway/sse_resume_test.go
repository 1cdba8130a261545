package gateway_test

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testkit"
)

// The resume, fan-out and stop tests of resume_test.go, over SSE.

// sseURL is the event stream of session id.
func (s *stack) sseURL(id string) string { return s.base + "/v1/sessions/" + id + "/events" }

// dialSSE opens the stream of session id, resuming after cursor (as
// Last-Event-ID) when it is not empty.
func (s *stack) dialSSE(t testing.TB, id, cursor string) *testkit.SSEClient {
	t.Helper()
	h := http.Header{}
	if cursor != "" {
		h.Set("Last-Event-ID", cursor)
	}
	c, resp := testkit.DialSSE(t, s.sseURL(id), h)
	if c == nil {
		t.Fatalf("SSE %s after %q: status %d", id, cursor, resp.StatusCode)
	}
	return c
}

func isTerminalMsg(m testkit.SSEMessage) bool {
	return m.Event == "event" && testkit.IsTerminal(m.Frame.Kind)
}

// TestSSEResumeManyCuts cuts the event stream at random points, again and
// again, over one long reply, each time resuming with the id of the last
// message received: the assembled text is the reply, byte for byte, and
// no seq arrives twice.
func TestSSEResumeManyCuts(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{chunkBytes: 128})
	tokens := longReply(2000)
	s.upstream.Push(testkit.TokenReply(500*time.Microsecond, tokens...))
	rng := rand.New(rand.NewPCG(3, 4))
	c := s.dial("")
	id := create(t, c, nil)
	sse := s.dialSSE(t, id, "")
	send(t, c, id, "very long please")

	var all []testkit.SSEMessage
	cuts, lastResume := 0, -1
	for {
		n := 1 + rng.IntN(60)
		done := false
		for i := 0; i < n && !done; i++ {
			m := sse.Next()
			all = append(all, m)
			done = isTerminalMsg(m)
		}
		if done {
			break
		}
		sse.Close()
		cuts++
		sse = s.dialSSE(t, id, all[len(all)-1].ID)
		lastResume = len(all)
	}
	frames := testkit.Frames(all)
	final := frames[len(frames)-1]
	text := testkit.Assemble(t, frames, 3)
	// The reply is the final event's text. The deltas assemble to all of
	// it, or, when the reply ended during a cut, to a prefix of it: a
	// completed generation is never re-sent as deltas (PROTOCOL.md 3).
	if final.Kind != "generation.completed" || final.DataText() != strings.Join(tokens, "") || !strings.HasPrefix(final.DataText(), text) {
		t.Fatalf("after %d cuts: %s; assembled %d bytes, final %d", cuts, final.Kind, len(text), len(final.DataText()))
	}
	assertEndedDuringCut(t, frames, lastResume, text, final)
	assertNoDuplicateSeq(t, frames)
	for i, m := range all {
		if want := cursorOf(frames[:i+1]); m.ID != want {
			t.Fatalf("message %d has id %q, want the cursor %q", i, m.ID, want)
		}
	}
	if cuts < 10 {
		t.Errorf("only %d cuts; the reply was too short to test much", cuts)
	}
	t.Logf("%d cuts over a %d-byte reply", cuts, len(text))
}

// TestSSEFanOut has 2 and 10 event streams and one WebSocket on one
// session: every stream sees the same events and byte-identical text.
func TestSSEFanOut(t *testing.T) {
	t.Parallel()
	for _, n := range []int{2, 10} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			t.Parallel()
			s := newStack(t, stackOpts{})
			s.upstream.Push(testkit.TokenReply(time.Millisecond, longReply(100)...))
			c := s.dial("")
			id := create(t, c, nil)
			streams := make([]*testkit.SSEClient, n)
			for i := range streams {
				streams[i] = s.dialSSE(t, id, "")
			}
			send(t, c, id, "to every stream")
			wsText := testkit.Assemble(t, c.Terminal(id, 3), 3)
			var want string
			for i, sse := range streams {
				msgs := sse.Until(isTerminalMsg)
				var got strings.Builder
				for _, m := range msgs {
					if m.Event == "event" {
						fmt.Fprintf(&got, "%s %d:%s,", m.ID, m.Frame.Seq, m.Frame.Kind)
					}
				}
				text := testkit.Assemble(t, testkit.Frames(msgs), 3)
				got.WriteString("|" + text)
				if text != wsText || text != strings.Join(longReply(100), "") {
					t.Errorf("stream %d assembled %d bytes, WebSocket %d", i, len(text), len(wsText))
				}
				if i == 0 {
					want = got.String()
				} else if got.String() != want {
					t.Errorf("stream %d saw %q, stream 0 %q", i, got.String(), want)
				}
			}
		})
	}
}

// TestSSEStopAfterResume resumes a stream mid-reply and stops the reply
// over HTTP: the resumed stream gets generation.stopped with exactly the
// text it assembled, and the upstream request is cancelled.
func TestSSEStopAfterResume(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	s.upstream.Push(testkit.Script{testkit.StepContent("one "), testkit.StepContent("two "), testkit.StepBlock()})
	c := s.dial("")
	id := create(t, c, nil)
	sse := s.dialSSE(t, id, "")
	send(t, c, id, "go")
	got := sse.Until(func(m testkit.SSEMessage) bool {
		return m.Event == "delta" && m.Frame.Offset+len(m.Frame.Text) == 8
	})
	sse.Close()
	// The stream is gone: the reply goes on.
	r := s.dialSSE(t, id, got[len(got)-1].ID)
	if status, body := s.do("POST", "/v1/sessions/"+id+"/stop", "", nil); status != http.StatusAccepted || !strings.Contains(string(body), `"stopped":true`) {
		t.Fatalf("stop: %d %s", status, body)
	}
	rest := r.Until(isTerminalMsg)
	final := rest[len(rest)-1].Frame
	all := append(testkit.Frames(got), testkit.Frames(rest)...)
	if final.Kind != "generation.stopped" || final.DataText() != "one two " || testkit.Assemble(t, all, 3) != "one two " {
		t.Fatalf("terminal %s", final.Raw)
	}
	assertNoDuplicateSeq(t, all)
	s.upstream.WaitCancelled(t, 1)
}

// TestSSEAccessTokenInQuery opens a stream with the token in the query,
// as a browser's EventSource must (it cannot set headers).
func TestSSEAccessTokenInQuery(t *testing.T) {
	t.Parallel()
	s := authStack(t)
	c := s.dial(aliceKey)
	id := create(t, c, nil)
	sse, resp := testkit.DialSSE(t, s.sseURL(id)+"?access_token="+aliceKey, nil)
	if sse == nil {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if m := sse.Next(); m.Frame.Kind != "session.created" {
		t.Errorf("first message %s", m.Data)
	}
	if _, resp := testkit.DialSSE(t, s.sseURL(id)+"?access_token="+bobKey, nil); resp.StatusCode != http.StatusForbidden {
		t.Errorf("another user's token: %d", resp.StatusCode)
	}
}
