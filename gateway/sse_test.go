package gateway_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testkit"
)

// TestSSEStream reads a turn over SSE: same frames as the WebSocket, id
// cursors, the right headers, and an exact resume from a cursor taken in
// the middle of the reply.
func TestSSEStream(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	hold := testkit.NewHold()
	s.upstream.Push(testkit.Script{testkit.StepContent("Hello"), testkit.StepContent(", wor"), hold.Step(), testkit.StepContent("ld!"), testkit.StepDone()})
	c := s.dial("")
	id := create(t, c, nil)
	send(t, c, id, "hi")

	sse, resp := testkit.DialSSE(t, s.base+"/v1/sessions/"+id+"/events", nil)
	if sse == nil {
		t.Fatalf("status %d", resp.StatusCode)
	}
	for k, want := range map[string]string{"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"} {
		if got := resp.Header.Get(k); got != want {
			t.Errorf("%s: %q, want %q", k, got, want)
		}
	}
	<-hold.Reached()
	msgs := sse.Until(func(m testkit.SSEMessage) bool {
		return m.Event == "delta" && m.Frame.Offset+len(m.Frame.Text) == len("Hello, wor")
	})
	var kinds []string
	for _, m := range msgs {
		if m.Event != m.Frame.Type {
			t.Errorf("event %q carries a %q frame", m.Event, m.Frame.Type)
		}
		kinds = append(kinds, m.Event+":"+m.Frame.Kind)
	}
	if kinds[0] != "event:session.created" || kinds[1] != "event:message.user" || kinds[2] != "event:generation.started" {
		t.Errorf("stream starts %v", kinds)
	}
	cut := msgs[len(msgs)-1].ID
	if cut != "3:10" {
		t.Errorf("cursor after %q is %q, want 3:10", "Hello, wor", cut)
	}
	sse.Close()

	// Resume from that cursor (Last-Event-ID), while the reply goes on.
	sse2, _ := testkit.DialSSE(t, s.base+"/v1/sessions/"+id+"/events", http.Header{"Last-Event-ID": {cut}})
	hold.Release()
	rest := sse2.Until(func(m testkit.SSEMessage) bool { return m.Frame.Kind == "generation.completed" })
	got := testkit.Assemble(t, append(testkit.Frames(msgs), testkit.Frames(rest)...), 3)
	final := rest[len(rest)-1].Frame.DataText()
	if got != "Hello, world!" || final != got {
		t.Fatalf("assembled %q, final %q", got, final)
	}
	for _, m := range rest {
		if m.Event == "event" && m.Frame.Seq <= 3 {
			t.Errorf("resume resent seq %d", m.Frame.Seq)
		}
	}
	// ?after= resumes the same way, after the end: just nothing more.
	sse3, _ := testkit.DialSSE(t, s.base+"/v1/sessions/"+id+"/events?after="+rest[len(rest)-1].ID, nil)
	if c := sse3.Comment(); !strings.HasPrefix(c, "stream") {
		t.Errorf("first comment %q", c)
	}
}

// TestSSEErrors answers bad requests with plain HTTP errors.
func TestSSEErrors(t *testing.T) {
	t.Parallel()
	s := authStack(t)
	c := s.dial(aliceKey)
	id := create(t, c, nil)
	tests := []struct {
		name, path string
		header     http.Header
		status     int
	}{
		{"no token", "/v1/sessions/" + id + "/events", nil, 401},
		{"other user", "/v1/sessions/" + id + "/events", http.Header{"Authorization": {"Bearer " + bobKey}}, 403},
		{"unknown session", "/v1/sessions/nope/events", http.Header{"Authorization": {"Bearer " + aliceKey}}, 404},
		{"bad cursor", "/v1/sessions/" + id + "/events?after=x", http.Header{"Authorization": {"Bearer " + aliceKey}}, 400},
	}
	for _, tt := range tests {
		sse, resp := testkit.DialSSE(t, s.base+tt.path, tt.header)
		if sse != nil || resp.StatusCode != tt.status {
			t.Errorf("%s: status %d", tt.name, resp.StatusCode)
		}
	}
	// access_token in the query works for EventSource clients.
	sse, resp := testkit.DialSSE(t, s.base+"/v1/sessions/"+id+"/events?access_token="+aliceKey, nil)
	if sse == nil {
		t.Fatalf("access_token: %d", resp.StatusCode)
	}
	if m := sse.Next(); m.Frame.Kind != "session.created" {
		t.Errorf("first message %+v", m)
	}
}

// TestSSEOutlivesKeepalive holds a stream open well past the engine's
// keepalive read deadline while the model pauses, with keepalive comments
// flowing, and notices promptly when the client goes away.
func TestSSEOutlivesKeepalive(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{idleTimeout: 300 * time.Millisecond, sseKeepalive: 100 * time.Millisecond})
	s.upstream.Push(testkit.Script{testkit.StepContent("a"), testkit.StepDelay(1500 * time.Millisecond), testkit.StepContent("b"), testkit.StepDone()})
	c := s.dial("")
	id := create(t, c, nil)
	send(t, c, id, "go")
	sse, _ := testkit.DialSSE(t, s.base+"/v1/sessions/"+id+"/events", nil)
	msgs := sse.Until(func(m testkit.SSEMessage) bool { return m.Frame.Kind == "generation.completed" })
	if got := testkit.Assemble(t, testkit.Frames(msgs), 3); got != "ab" {
		t.Errorf("text %q", got)
	}
	for i := 0; i < 3; i++ {
		if cm := sse.Comment(); cm != "keepalive" && !strings.HasPrefix(cm, "stream") {
			t.Errorf("comment %q", cm)
		}
	}
	if s.srv.OpenStreams() != 1 {
		t.Fatalf("%d open streams", s.srv.OpenStreams())
	}
	sse.Close()
	deadline := time.Now().Add(5 * time.Second)
	for s.srv.OpenStreams() != 0 {
		if time.Now().After(deadline) {
			t.Fatal("server did not notice the client left")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
