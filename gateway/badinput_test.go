package gateway_test

import (
	"strings"
	"testing"

	"github.com/coder/websocket"

	"github.com/parleyhq/parley/internal/testkit"
)

// TestBadFrames sends frames that are not valid commands: each gets an
// error bad_request naming the problem, and the socket stays usable.
func TestBadFrames(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	c := s.dial("")
	id := create(t, c, nil)
	if f := c.Next(); f.Kind != "session.created" {
		t.Fatalf("after create: %s", f.Raw)
	}
	tests := []struct {
		name, frame, code, wantID, inMessage string
	}{
		{"not JSON", `{"type":`, "bad_request", "", "malformed"},
		{"array", `[1,2]`, "bad_request", "", "malformed"},
		{"two values", `{"type":"ping"} {"type":"ping"}`, "bad_request", "", "more than one"},
		{"no type", `{"id":"a"}`, "bad_request", "a", "no \"type\""},
		{"unknown type", `{"id":"b","type":"dance"}`, "bad_request", "b", "unknown type"},
		{"wrong field type", `{"id":"c","type":"send","session":"` + id + `","content":5}`, "bad_request", "c", "content"},
		{"send without content", `{"id":"d","type":"send","session":"` + id + `"}`, "bad_request", "d", "content"},
		{"send with empty content", `{"id":"e","type":"send","session":"` + id + `","content":""}`, "bad_request", "e", "content"},
		{"send without session", `{"id":"f","type":"send","content":"x"}`, "bad_request", "f", "session"},
		{"attach without session", `{"id":"g","type":"attach"}`, "bad_request", "g", "session"},
		{"attach with bad cursor", `{"id":"h","type":"attach","session":"` + id + `","after":"x:1"}`, "bad_request", "h", "cursor"},
		{"unknown session", `{"id":"i","type":"attach","session":"nope"}`, "not_found", "i", ""},
		{"send to unknown session", `{"id":"j","type":"send","session":"nope","content":"x"}`, "not_found", "j", ""},
		{"stop unknown session", `{"id":"k","type":"stop","session":"nope"}`, "not_found", "k", ""},
		{"attach a well-formed id nobody made", `{"id":"l","type":"attach","session":"AAAAAAAAAAAAAAAAAAAAAA"}`, "not_found", "l", ""},
		{"create with a long title", `{"id":"m","type":"create","title":"` + strings.Repeat("t", 201) + `"}`, "bad_request", "m", "title"},
	}
	for _, tt := range tests {
		c.SendRaw([]byte(tt.frame))
		f := c.Next()
		if f.Type != "error" || f.Code != tt.code || f.ID != tt.wantID || !strings.Contains(f.Message, tt.inMessage) {
			t.Errorf("%s: got %s", tt.name, f.Raw)
		}
	}
	// Still usable, and nothing was appended. A ping with an id gets its
	// pong and, as every command with an id, one ack.
	c.Send(map[string]any{"type": "ping", "id": "p"})
	if f := c.Next(); f.Type != "pong" {
		t.Fatalf("ping after bad frames: %s", f.Raw)
	}
	if f := c.Next(); f.Type != "ack" || f.ID != "p" {
		t.Fatalf("ping with an id: %s, want its ack", f.Raw)
	}
	status, body := s.do("GET", "/v1/sessions/"+id, "", nil)
	if status != 200 || !strings.Contains(string(body), `"last_seq":1`) {
		t.Errorf("session changed: %s", body)
	}
}

// TestOversizedFrame closes the socket with 1009, and nothing else breaks.
func TestOversizedFrame(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{frameBytes: 4096})
	c := s.dial("")
	id := create(t, c, nil)
	c.Send(map[string]any{"type": "send", "session": id, "content": strings.Repeat("x", 5000)})
	if code := c.Closed(); code != websocket.StatusMessageTooBig {
		t.Fatalf("close status %d, want 1009 (err %v)", code, c.Err())
	}
	// A new socket works and the session is untouched.
	c2 := s.dial("")
	c2.Ack(c2.Command(map[string]any{"type": "attach", "session": id}))
	if f := c2.Next(); f.Kind != "session.created" {
		t.Fatalf("history: %s", f.Raw)
	}
	// HTTP bodies over the limit are 413.
	status, body := s.do("POST", "/v1/sessions/"+id+"/messages", "", map[string]any{"content": strings.Repeat("y", 5000)})
	if status != 413 || !strings.Contains(string(body), "too_large") {
		t.Errorf("big HTTP body: %d %s", status, body)
	}
}

// TestBinaryFrame refuses binary frames with bad_request.
func TestBinaryFrame(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	ctx := t.Context()
	conn, _, err := websocket.Dial(ctx, s.wsURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	if err := conn.Write(ctx, websocket.MessageBinary, []byte(`{"type":"ping"}`)); err != nil {
		t.Fatal(err)
	}
	_, data, err := conn.Read(ctx)
	if err != nil || !strings.Contains(string(data), `"bad_request"`) {
		t.Fatalf("binary frame: %s %v", data, err)
	}
}

// TestBadHTTPRequests covers the HTTP API's answers to bad input.
func TestBadHTTPRequests(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	status, body := s.do("POST", "/v1/sessions", "", map[string]any{"title": "t"})
	if status != 201 {
		t.Fatalf("create: %d %s", status, body)
	}
	id := jsonField(t, body, "id")
	tests := []struct {
		name, method, path string
		body               any
		status             int
		code               string
	}{
		{"malformed JSON", "POST", "/v1/sessions/" + id + "/messages", `{"content":`, 400, "bad_request"},
		{"missing content", "POST", "/v1/sessions/" + id + "/messages", map[string]any{}, 400, "bad_request"},
		{"unknown session", "GET", "/v1/sessions/nope", nil, 404, "not_found"},
		{"send to unknown session", "POST", "/v1/sessions/nope/messages", map[string]any{"content": "x"}, 404, "not_found"},
		{"unknown endpoint", "GET", "/v2/x", nil, 404, "not_found"},
		{"websocket endpoint without the handshake", "GET", "/v1/ws", nil, 400, "bad_request"},
		{"long title", "POST", "/v1/sessions", map[string]any{"title": strings.Repeat("t", 201)}, 400, "bad_request"},
	}
	for _, tt := range tests {
		status, body := s.do(tt.method, tt.path, "", tt.body)
		if status != tt.status || jsonField(t, body, "error.code") != tt.code {
			t.Errorf("%s: %d %s", tt.name, status, body)
		}
	}
	_ = testkit.DefaultWait
}
