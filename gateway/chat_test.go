package gateway_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parleyhq/parley/gateway"
	"github.com/parleyhq/parley/internal/testkit"
)

// TestChatTurn runs one full turn over a real WebSocket: create, send,
// streamed deltas, the completed event, all persisted in JetStream.
func TestChatTurn(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	s.upstream.Push(testkit.TokenReply(time.Millisecond, "Hel", "lo, ", "wor", "ld!"))
	c := s.dial("")
	id := create(t, c, nil)
	ack := send(t, c, id, "hi there")
	if ack.Seq != 2 {
		t.Fatalf("send ack seq %d, want 2", ack.Seq)
	}
	frames := c.Terminal(id, 3)
	last := frames[len(frames)-1]
	if last.Kind != "generation.completed" {
		t.Fatalf("terminal %s: %s", last.Kind, last.Raw)
	}
	text := testkit.Assemble(t, frames, 3)
	if text != "Hello, world!" || last.DataText() != text {
		t.Fatalf("deltas %q, final %q", text, last.DataText())
	}
	// The model got the user message.
	req := s.upstream.Requests()[0]
	if n := len(req.Chat.Messages); n != 1 || req.Chat.Messages[0].Content != "hi there" {
		t.Errorf("upstream got %+v", req.Chat.Messages)
	}
	// And the log has it, readable over HTTP.
	status, body := s.do("GET", "/v1/sessions/"+id, "", nil)
	if status != 200 {
		t.Fatalf("detail: %d %s", status, body)
	}
	var d struct {
		LastSeq  uint64 `json:"last_seq"`
		Messages []struct {
			Seq     uint64
			Role    string
			Content string
			State   string
		}
	}
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatal(err)
	}
	if len(d.Messages) != 2 || d.Messages[1].Content != "Hello, world!" || d.Messages[1].State != "completed" {
		t.Errorf("detail messages: %s", body)
	}
}

// TestStopMidStream stops a reply while the model is still streaming: the
// generation ends as stopped with the text shown so far, and the upstream
// HTTP request is cancelled.
func TestStopMidStream(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	s.upstream.Push(testkit.Script{testkit.StepContent("partial "), testkit.StepContent("reply"), testkit.StepBlock()})
	c := s.dial("")
	id := create(t, c, nil)
	send(t, c, id, "go")
	c.Until(func(f testkit.Frame) bool { return f.Type == "delta" && f.Offset+len(f.Text) == len("partial reply") })
	ack, frames := stopReply(t, c, id, 3)
	last := frames[len(frames)-1]
	if last.Kind != "generation.stopped" || last.DataText() != "partial reply" {
		t.Fatalf("terminal: %s", last.Raw)
	}
	if !*ack.Stopped {
		t.Errorf("stop ack: %s", ack.Raw)
	}
	s.upstream.WaitCancelled(t, 1)
	// A second stop finds nothing running; the session takes a new send.
	ack = c.Ack(c.Command(map[string]any{"type": "stop", "session": id}))
	if ack.Stopped == nil || *ack.Stopped {
		t.Errorf("second stop ack: %s", ack.Raw)
	}
	s.upstream.Push(testkit.TextReply("ok", 0))
	if a := send(t, c, id, "again"); a.Seq != 5 {
		t.Errorf("send after stop: seq %d, want 5", a.Seq)
	}
}

// TestStopOverHTTP stops from another client over HTTP.
func TestStopOverHTTP(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	s.upstream.Push(testkit.Script{testkit.StepContent("x"), testkit.StepBlock()})
	c := s.dial("")
	id := create(t, c, nil)
	send(t, c, id, "go")
	c.Until(func(f testkit.Frame) bool { return f.Type == "delta" })
	status, body := s.do("POST", "/v1/sessions/"+id+"/stop", "", nil)
	if status != 202 || string(body) != "{\"stopped\":true}\n" {
		t.Fatalf("stop: %d %s", status, body)
	}
	last := c.Terminal(id, 3)
	if k := last[len(last)-1].Kind; k != "generation.stopped" {
		t.Errorf("terminal %s", k)
	}
	s.upstream.WaitCancelled(t, 1)
}

// TestIdempotentClientMsgID retries a send with the same client_msg_id:
// the retry gets the original seq and appends nothing.
func TestIdempotentClientMsgID(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	hold := testkit.NewHold()
	s.upstream.Push(testkit.Script{testkit.StepContent("a"), hold.Step(), testkit.StepDone()})
	c := s.dial("")
	id := create(t, c, nil)
	msg := map[string]any{"type": "send", "session": id, "content": "once", "client_msg_id": "m-1"}
	first := c.Ack(c.Command(msg))
	second := c.Ack(c.Command(msg)) // while the reply runs
	if first.Seq != 2 || second.Seq != 2 {
		t.Fatalf("seqs %d, %d; want 2, 2", first.Seq, second.Seq)
	}
	hold.Release()
	c.Terminal(id, 3)
	third := c.Ack(c.Command(msg)) // after it ended
	if third.Seq != 2 {
		t.Errorf("retry after the turn: seq %d", third.Seq)
	}
	// Over HTTP too.
	status, body := s.do("POST", "/v1/sessions/"+id+"/messages", "", map[string]any{"content": "once", "client_msg_id": "m-1"})
	if status != 202 || string(body) != "{\"client_msg_id\":\"m-1\",\"seq\":2}\n" {
		t.Errorf("HTTP retry: %d %s", status, body)
	}
	if n := len(s.upstream.Requests()); n != 1 {
		t.Errorf("%d upstream requests, want 1", n)
	}
	_, body = s.do("GET", "/v1/sessions/"+id, "", nil)
	var d struct {
		LastSeq uint64 `json:"last_seq"`
	}
	_ = json.Unmarshal(body, &d)
	if d.LastSeq != 4 {
		t.Errorf("last_seq %d, want 4 (created, user, started, completed)", d.LastSeq)
	}
}

// TestBusy refuses a second message while a reply is generated.
func TestBusy(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	hold := testkit.NewHold()
	s.upstream.Push(testkit.Script{hold.Step(), testkit.StepContent("done"), testkit.StepDone()})
	c := s.dial("")
	id := create(t, c, nil)
	send(t, c, id, "first")
	r, _ := c.Reply(c.Command(map[string]any{"type": "send", "session": id, "content": "second"}))
	if r.Type != "error" || r.Code != "busy" {
		t.Fatalf("second send: %s", r.Raw)
	}
	status, body := s.do("POST", "/v1/sessions/"+id+"/messages", "", map[string]any{"content": "third"})
	if status != 409 {
		t.Errorf("HTTP send while busy: %d %s", status, body)
	}
	hold.Release()
	c.Terminal(id, 3)
	if a := send(t, c, id, "now"); a.Seq != 5 {
		t.Errorf("send after the reply: seq %d", a.Seq)
	}
}

// TestRestartKeepsSessions stops the whole stack and starts a new one on
// the same data dir: sessions, messages and seq all survive.
func TestRestartKeepsSessions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := newStack(t, stackOpts{dir: dir})
	s.upstream.Push(testkit.TextReply("first reply", 4))
	c := s.dial("")
	id := create(t, c, map[string]any{"title": "kept"})
	send(t, c, id, "one")
	c.Terminal(id, 3)
	c.Close()
	s.stop()

	s2 := newStack(t, stackOpts{dir: dir})
	status, body := s2.do("GET", "/v1/sessions", "", nil)
	var list struct {
		Sessions []struct {
			ID, Title string
			LastSeq   uint64 `json:"last_seq"`
		}
	}
	_ = json.Unmarshal(body, &list)
	if status != 200 || len(list.Sessions) != 1 || list.Sessions[0].ID != id || list.Sessions[0].Title != "kept" {
		t.Fatalf("list after restart: %d %s", status, body)
	}
	c2 := s2.dial("")
	c2.Ack(c2.Command(map[string]any{"type": "attach", "session": id}))
	hist := c2.Until(func(f testkit.Frame) bool { return f.Kind == "generation.completed" })
	var seqs []uint64
	for _, f := range hist {
		if f.Type == "event" {
			seqs = append(seqs, f.Seq)
		}
	}
	if hist[len(hist)-1].DataText() != "first reply" {
		t.Errorf("history: %v, final %q", seqs, hist[len(hist)-1].DataText())
	}
	s2.upstream.Push(testkit.TextReply("second", 0))
	ack := send(t, c2, id, "two")
	if want := list.Sessions[0].LastSeq + 1; ack.Seq != want {
		t.Errorf("send after restart: seq %d, want %d", ack.Seq, want)
	}
	frames := c2.Terminal(id, ack.Seq+1)
	if got := frames[len(frames)-1].DataText(); got != "second" {
		t.Errorf("second reply %q", got)
	}
	// The model saw the whole conversation.
	msgs := s2.upstream.Requests()[0].Chat.Messages
	if len(msgs) != 3 || msgs[0].Content != "one" || msgs[1].Content != "first reply" || msgs[2].Content != "two" {
		t.Errorf("context after restart: %+v", msgs)
	}
}

// TestShutdownSaysReconnect shuts the gateway down under an attached
// client: it gets a reconnect frame with a delay in the advertised range,
// after the frames it was already sent, then the close with 1001.
func TestShutdownSaysReconnect(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	c := s.dial("")
	create(t, c, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	fs := c.Until(func(f testkit.Frame) bool { return f.Type != "event" })
	f := fs[len(fs)-1]
	var r struct {
		Type    string
		AfterMs int64 `json:"after_ms"`
	}
	if err := json.Unmarshal(f.Raw, &r); err != nil || r.Type != "reconnect" ||
		r.AfterMs < gateway.ReconnectMinDelay.Milliseconds() || r.AfterMs > gateway.ReconnectMaxDelay.Milliseconds() {
		t.Fatalf("first frame at shutdown: %s", f.Raw)
	}
	if code := c.Closed(); code != websocket.StatusGoingAway {
		t.Errorf("closed with %v, want 1001", code)
	}
}
