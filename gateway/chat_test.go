package gateway_test

import (
	"encoding/json"
	"testing"
	"time"

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
