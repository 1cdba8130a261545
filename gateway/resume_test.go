package gateway_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testkit"
)

// cursorOf is the cursor after the frames a client received: the last
// event's seq, and for a running generation the bytes of it received.
func cursorOf(frames []testkit.Frame) string {
	seq, gen, off := uint64(0), uint64(0), 0
	for _, f := range frames {
		switch f.Type {
		case "event":
			seq = f.Seq
			if f.Kind == "generation.started" {
				gen, off = f.Seq, 0
			} else if testkit.IsTerminal(f.Kind) {
				gen, off = 0, 0
			}
		case "delta":
			if f.Gen == gen {
				off = f.Offset + len(f.Text)
			}
		}
	}
	if off > 0 {
		return fmt.Sprintf("%d:%d", seq, off)
	}
	return fmt.Sprint(seq)
}

// longReply is a reply of many small tokens with multi-byte characters.
func longReply(n int) []string {
	words := []string{"alpha ", "βeta ", "gämma ", "δelta ", "😀 ", "日本 ", "z"}
	out := make([]string, n)
	for i := range out {
		out[i] = words[i%len(words)]
	}
	return out
}

// TestResumeMidDelta cuts a socket while a reply streams and resumes on a
// new one from the cursor the client had: the assembled text equals the
// final event's text byte for byte, and no seq arrives twice.
func TestResumeMidDelta(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{chunkBytes: 64})
	tokens := longReply(300)
	s.upstream.Push(testkit.TokenReply(2*time.Millisecond, tokens...))
	c := s.dial("")
	id := create(t, c, nil)
	send(t, c, id, "long please")
	got := c.Until(func(f testkit.Frame) bool { return f.Type == "delta" && f.Offset > 200 })
	c.Drop()

	r := s.dial("")
	r.Ack(r.Command(map[string]any{"type": "attach", "session": id, "after": cursorOf(got)}))
	rest := r.Terminal(id, 3)
	all := append(got, rest...)
	final := rest[len(rest)-1]
	if final.Kind != "generation.completed" {
		t.Fatalf("terminal %s", final.Raw)
	}
	text := testkit.Assemble(t, all, 3)
	if text != strings.Join(tokens, "") || text != final.DataText() {
		t.Fatalf("assembled %d bytes, final %d bytes, want %d", len(text), len(final.DataText()), len(strings.Join(tokens, "")))
	}
	assertNoDuplicateSeq(t, all)
}

// assertEndedDuringCut checks that deltas assembling to less than the
// final text can only be because the reply ended while the client was
// away: then the final event comes in the history of the last attach
// (frames from index resumedAt on), with no delta after that attach.
func assertEndedDuringCut(t *testing.T, frames []testkit.Frame, resumedAt int, text string, final testkit.Frame) {
	t.Helper()
	if text == final.DataText() {
		return
	}
	if resumedAt < 0 {
		t.Fatalf("deltas assembled %d of %d bytes without any cut", len(text), len(final.DataText()))
	}
	for _, f := range frames[resumedAt : len(frames)-1] {
		if f.Type == "delta" {
			t.Fatalf("deltas assembled %d of %d bytes, yet the last resume got live deltas: %s", len(text), len(final.DataText()), f.Raw)
		}
	}
	t.Logf("the reply ended during a cut: the final event brought the last %d bytes", len(final.DataText())-len(text))
}

func assertNoDuplicateSeq(t *testing.T, frames []testkit.Frame) {
	t.Helper()
	seen := map[uint64]bool{}
	for _, f := range frames {
		if f.Type != "event" {
			continue
		}
		if seen[f.Seq] {
			t.Errorf("seq %d arrived twice", f.Seq)
		}
		seen[f.Seq] = true
	}
}

// TestResumeManyCuts cuts the socket at random points, again and again,
// over one long reply, each time resuming from the client's cursor.
func TestResumeManyCuts(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{chunkBytes: 128})
	tokens := longReply(2000)
	s.upstream.Push(testkit.TokenReply(500*time.Microsecond, tokens...))
	rng := rand.New(rand.NewPCG(1, 2))
	c := s.dial("")
	id := create(t, c, nil)
	var all []testkit.Frame
	send(t, c, id, "very long please")
	cuts, lastResume := 0, -1
	for {
		n := 1 + rng.IntN(60)
		done := false
		for i := 0; i < n && !done; i++ {
			f := c.Next()
			all = append(all, f)
			done = f.Type == "event" && testkit.IsTerminal(f.Kind)
		}
		if done {
			break
		}
		c.Drop()
		cuts++
		c = s.dial("")
		id2 := c.Command(map[string]any{"type": "attach", "session": id, "after": cursorOf(all)})
		_, before := c.Reply(id2)
		all = append(all, before...)
		lastResume = len(all)
	}
	final := all[len(all)-1]
	text := testkit.Assemble(t, all, 3)
	// The reply is the final event's text. The deltas assemble to all of
	// it, or, when the reply ended during a cut, to a prefix of it: a
	// completed generation is never re-sent as deltas (PROTOCOL.md 3).
	if final.Kind != "generation.completed" || final.DataText() != strings.Join(tokens, "") || !strings.HasPrefix(final.DataText(), text) {
		t.Fatalf("after %d cuts: %s; assembled %d bytes, final %d", cuts, final.Kind, len(text), len(final.DataText()))
	}
	assertEndedDuringCut(t, all, lastResume, text, final)
	assertNoDuplicateSeq(t, all)
	if cuts < 10 {
		t.Errorf("only %d cuts; the reply was too short to test much", cuts)
	}
	t.Logf("%d cuts over a %d-byte reply", cuts, len(text))
}

// TestFanOut attaches 2 and 10 connections to one session: all see the
// same events and byte-identical text, live, and a send from one is seen
// by all.
func TestFanOut(t *testing.T) {
	t.Parallel()
	for _, n := range []int{2, 10} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			t.Parallel()
			s := newStack(t, stackOpts{})
			s.upstream.Push(testkit.TokenReply(time.Millisecond, longReply(100)...))
			owner := s.dial("")
			id := create(t, owner, nil)
			clients := []*testkit.WSClient{owner}
			for i := 1; i < n; i++ {
				c := s.dial("")
				c.Ack(c.Command(map[string]any{"type": "attach", "session": id}))
				clients = append(clients, c)
			}
			// The last attached one sends.
			sender := clients[n-1]
			send(t, sender, id, "to everyone")
			var want string
			for i, c := range clients {
				frames := c.Terminal(id, 3)
				var evs []string
				for _, f := range frames {
					if f.Type == "event" {
						evs = append(evs, fmt.Sprintf("%d:%s", f.Seq, f.Kind))
					}
				}
				text := testkit.Assemble(t, frames, 3)
				got := strings.Join(evs, ",") + "|" + text
				if i == 0 {
					want = got
					if !strings.Contains(got, "message.user") || text == "" {
						t.Fatalf("owner saw %s", got)
					}
				} else if !strings.HasSuffix(want, "|"+text) || !strings.Contains(got, "2:message.user,3:generation.started") {
					t.Errorf("client %d saw %q, owner %q", i, got, want)
				}
			}
		})
	}
}

// TestDisconnectNeverCancels closes every socket mid-reply: the reply runs
// on, is persisted, and a client that comes back gets the final event.
func TestDisconnectNeverCancels(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	s.upstream.Push(testkit.TokenReply(5*time.Millisecond, longReply(60)...))
	c := s.dial("")
	id := create(t, c, nil)
	send(t, c, id, "go")
	c.Until(func(f testkit.Frame) bool { return f.Type == "delta" })
	c.Close()
	req := s.upstream.WaitRequests(t, 1)[0]
	<-req.Finished()
	if s.upstream.CancelledCount() != 0 {
		t.Fatal("closing the socket cancelled the upstream request")
	}
	r := s.dial("")
	r.Ack(r.Command(map[string]any{"type": "attach", "session": id, "after": "3"}))
	f := r.Next()
	if f.Kind != "generation.completed" || f.DataText() != strings.Join(longReply(60), "") {
		t.Fatalf("after reconnect: %s", f.Raw)
	}
}

// TestStopAfterResume stops a reply from a connection that resumed it.
func TestStopAfterResume(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	s.upstream.Push(testkit.Script{testkit.StepContent("one "), testkit.StepContent("two "), testkit.StepBlock()})
	c := s.dial("")
	id := create(t, c, nil)
	send(t, c, id, "go")
	got := c.Until(func(f testkit.Frame) bool { return f.Type == "delta" && f.Offset+len(f.Text) == 8 })
	c.Drop()
	r := s.dial("")
	r.Ack(r.Command(map[string]any{"type": "attach", "session": id, "after": cursorOf(got)}))
	ack, rest := stopReply(t, r, id, 3)
	final := rest[len(rest)-1]
	if final.Kind != "generation.stopped" || final.DataText() != "one two " || testkit.Assemble(t, append(got, rest...), 3) != "one two " {
		t.Fatalf("terminal %s", final.Raw)
	}
	if !*ack.Stopped {
		t.Errorf("stop ack %s", ack.Raw)
	}
	s.upstream.WaitCancelled(t, 1)
}

// TestAttachAfterEnd gets a finished turn's final state at once, never a
// pending one; attaching twice with the same cursor is harmless.
func TestAttachAfterEnd(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	s.upstream.Push(testkit.TextReply("finished reply", 3))
	c := s.dial("")
	id := create(t, c, nil)
	send(t, c, id, "go")
	got := c.Until(func(f testkit.Frame) bool { return f.Type == "delta" })
	c.Terminal(id, 3)
	c.Close()
	for i := 0; i < 2; i++ {
		r := s.dial("")
		r.Ack(r.Command(map[string]any{"type": "attach", "session": id, "after": cursorOf(got)}))
		f := r.Next()
		if f.Type != "event" || f.Kind != "generation.completed" || f.DataText() != "finished reply" {
			t.Fatalf("attempt %d: %s", i, f.Raw)
		}
		r.Send(map[string]any{"type": "ping"})
		if f := r.Next(); f.Type != "pong" {
			t.Errorf("attempt %d: extra frame %s", i, f.Raw)
		}
	}
}

// TestConcurrentSends sends from two connections at the same moment, many
// times: each pair gets one ack and one busy or conflict, and the log has
// exactly the acknowledged messages.
func TestConcurrentSends(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	a := s.dial("")
	id := create(t, a, nil)
	b := s.dial("")
	b.Ack(b.Command(map[string]any{"type": "attach", "session": id}))
	acked := 0
	for round := 0; round < 10; round++ {
		s.upstream.Push(testkit.TextReply("r", 0), testkit.TextReply("r", 0))
		var wg sync.WaitGroup
		replies := make([]testkit.Frame, 2)
		for i, c := range []*testkit.WSClient{a, b} {
			wg.Add(1)
			go func(i int, c *testkit.WSClient) {
				defer wg.Done()
				reqID := fmt.Sprintf("x%d-%d", round, i)
				c.Send(map[string]any{"type": "send", "session": id, "content": reqID, "id": reqID})
				replies[i], _ = c.Reply(reqID)
			}(i, c)
		}
		wg.Wait()
		ok := 0
		for _, r := range replies {
			switch {
			case r.Type == "ack":
				ok++
			case r.Code == "busy" || r.Code == "conflict":
			default:
				t.Fatalf("round %d: %s", round, r.Raw)
			}
		}
		if ok < 1 {
			t.Fatalf("round %d: no send was accepted: %v", round, replies)
		}
		acked += ok
		// Let the reply finish before the next round.
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, body := s.do("GET", "/v1/sessions/"+id, "", nil)
			if jsonField(t, body, "generating") == "false" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("reply did not finish")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	_, body := s.do("GET", "/v1/sessions/"+id, "", nil)
	if n := strings.Count(string(body), `"role":"user"`); n != acked {
		t.Errorf("%d user messages in the log, %d acked", n, acked)
	}
}

// TestStaleExpectSeq refuses a send from a client that has not seen the
// latest event.
func TestStaleExpectSeq(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	s.upstream.Push(testkit.TextReply("first", 0))
	c := s.dial("")
	id := create(t, c, nil)
	send(t, c, id, "one")
	c.Terminal(id, 3) // the log is at seq 4
	for _, seq := range []int{1, 3, 5} {
		r, _ := c.Reply(c.Command(map[string]any{"type": "send", "session": id, "content": "stale", "expect_seq": seq}))
		if r.Type != "error" || r.Code != "conflict" {
			t.Errorf("expect_seq %d: %s", seq, r.Raw)
		}
	}
	s.upstream.Push(testkit.TextReply("second", 0))
	if a := c.Ack(c.Command(map[string]any{"type": "send", "session": id, "content": "fresh", "expect_seq": 4})); a.Seq != 5 {
		t.Errorf("fresh send seq %d", a.Seq)
	}
	status, body := s.do("POST", "/v1/sessions/"+id+"/messages", "", map[string]any{"content": "stale", "expect_seq": 4})
	if status != 409 || jsonField(t, body, "error.code") != "conflict" && jsonField(t, body, "error.code") != "busy" {
		t.Errorf("HTTP stale send: %d %s", status, body)
	}
}

// TestPauseLongerThanKeepalive: the model pauses for longer than the idle
// timeout; pings and pongs keep the socket open and the reply arrives.
func TestPauseLongerThanKeepalive(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{idleTimeout: 400 * time.Millisecond, pingInterval: 100 * time.Millisecond})
	s.upstream.Push(testkit.Script{testkit.StepContent("before "), testkit.StepDelay(1500 * time.Millisecond), testkit.StepContent("after"), testkit.StepDone()})
	c := s.dial("")
	id := create(t, c, nil)
	send(t, c, id, "go")
	frames := c.Terminal(id, 3)
	if got := frames[len(frames)-1].DataText(); got != "before after" {
		t.Fatalf("final %q", got)
	}
}

// TestIdleSocketClosed: a client that answers nothing is disconnected
// after the idle timeout.
func TestIdleSocketClosed(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{idleTimeout: 300 * time.Millisecond, pingInterval: time.Hour})
	c := s.dial("")
	start := time.Now()
	c.Closed()
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("closed after %v", d)
	}
}
