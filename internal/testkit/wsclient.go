package testkit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// Frame is one server frame as a test sees it: the raw JSON and the
// fields tests look at.
type Frame struct {
	Raw     json.RawMessage `json:"-"`
	Type    string          `json:"type"`
	ID      string          `json:"id"`
	Session string          `json:"session"`
	Seq     uint64          `json:"seq"`
	Kind    string          `json:"kind"`
	Gen     uint64          `json:"gen"`
	Offset  int             `json:"offset"`
	Text    string          `json:"text"`
	Code    string          `json:"code"`
	Message string          `json:"message"`
	Stopped *bool           `json:"stopped"`
	Data    json.RawMessage `json:"data"`
}

// DataText is the "text" field of an event's data.
func (f Frame) DataText() string {
	var d struct {
		Text string `json:"text"`
	}
	_ = json.Unmarshal(f.Data, &d)
	return d.Text
}

// WSClient is a real WebSocket client (coder/websocket) for tests. A
// goroutine reads frames into a queue; Next and friends take from it.
type WSClient struct {
	tb     testing.TB
	conn   *websocket.Conn
	frames *queue[Frame]
	done   chan struct{}
	mu     sync.Mutex
	err    error // why reading ended
	nextID int
}

// DialWS connects to url (ws://…/v1/ws). header may carry Authorization.
// The connection is closed when the test ends.
func DialWS(tb testing.TB, url string, header http.Header) *WSClient {
	tb.Helper()
	c, resp, err := TryDialWS(url, header)
	for try := 1; err != nil && resp == nil && IsConnectionCut(err) && try <= 3; try++ {
		// The server cut the connection before answering the handshake:
		// see IsConnectionCut. A client reconnects; so does this one.
		tb.Logf("dial %s: %v; reconnecting (%d)", url, err, try)
		c, resp, err = TryDialWS(url, header)
	}
	if err != nil {
		status := 0
		if resp != nil {
			status = resp.StatusCode
		}
		tb.Fatalf("dial %s: %v (status %d)", url, err, status)
	}
	c.tb = tb
	tb.Cleanup(func() { c.Close() })
	return c
}

// IsConnectionCut reports whether err is a connection the server closed
// before it answered (EOF, reset). nbio v1.6.8 can do that to a connection
// just accepted when a socket closed from a writer goroutine had an error
// event pending on its poller and the new socket got the same file
// descriptor (docs/architecture.md, "Known issues"); clients see it as a
// failed connect and reconnect.
func IsConnectionCut(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

// TryDialWS connects without failing the test, for tests of refused
// connections. The caller closes the client.
func TryDialWS(url string, header http.Header) (*WSClient, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: header})
	if err != nil {
		return nil, resp, err
	}
	conn.SetReadLimit(64 << 20)
	c := &WSClient{conn: conn, frames: newQueue[Frame](), done: make(chan struct{})}
	go c.readLoop()
	return c, resp, nil
}

func (c *WSClient) readLoop() {
	defer close(c.done)
	for {
		_, data, err := c.conn.Read(context.Background())
		if err != nil {
			c.mu.Lock()
			c.err = err
			c.mu.Unlock()
			return
		}
		var f Frame
		if err := json.Unmarshal(data, &f); err != nil {
			f = Frame{Type: "!invalid-json", Message: err.Error()}
		}
		f.Raw = append(json.RawMessage(nil), data...)
		c.frames.push(f)
	}
}

// Send writes v as one JSON text frame.
func (c *WSClient) Send(v any) {
	c.tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.tb.Fatal(err)
	}
	c.SendRaw(b)
}

// SendRaw writes b as one text frame.
func (c *WSClient) SendRaw(b []byte) {
	c.tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.conn.Write(ctx, websocket.MessageText, b); err != nil {
		c.tb.Fatalf("write: %v", err)
	}
}

// Command sends a command with a fresh request id and returns that id.
func (c *WSClient) Command(fields map[string]any) string {
	c.tb.Helper()
	c.nextID++
	id := fmt.Sprintf("r%d", c.nextID)
	fields["id"] = id
	c.Send(fields)
	return id
}

// DefaultWait bounds every wait for a frame.
const DefaultWait = 20 * time.Second

// Next returns the next frame, failing the test after DefaultWait.
func (c *WSClient) Next() Frame {
	c.tb.Helper()
	f, ok, closed := c.frames.wait(c.done, DefaultWait)
	switch {
	case closed:
		c.tb.Fatalf("connection closed while waiting for a frame: %v", c.Err())
	case !ok:
		c.tb.Fatalf("no frame within %v", DefaultWait)
	}
	return f
}

// TryNext returns the next frame, or the error that ended the connection
// (the frames that came before it are returned first). It fails the test
// only when nothing arrives within DefaultWait.
func (c *WSClient) TryNext() (Frame, error) {
	c.tb.Helper()
	f, ok, closed := c.frames.wait(c.done, DefaultWait)
	switch {
	case closed:
		return Frame{}, c.Err()
	case !ok:
		c.tb.Fatalf("no frame within %v", DefaultWait)
	}
	return f, nil
}

// Until returns frames up to and including the first for which match is
// true.
func (c *WSClient) Until(match func(Frame) bool) []Frame {
	c.tb.Helper()
	var got []Frame
	for {
		f := c.Next()
		got = append(got, f)
		if match(f) {
			return got
		}
	}
}

// Reply waits for the ack or error answering request id, returning it and
// the frames that came before it.
func (c *WSClient) Reply(id string) (Frame, []Frame) {
	c.tb.Helper()
	fs := c.Until(func(f Frame) bool { return (f.Type == "ack" || f.Type == "error") && f.ID == id })
	return fs[len(fs)-1], fs[:len(fs)-1]
}

// Ack is Reply that fails the test unless the answer is an ack.
func (c *WSClient) Ack(id string) Frame {
	c.tb.Helper()
	r, _ := c.Reply(id)
	if r.Type != "ack" {
		c.tb.Fatalf("request %s: %s %s: %s", id, r.Type, r.Code, r.Message)
	}
	return r
}

// Terminal returns the frames up to and including the terminal event of
// generation gen of session.
func (c *WSClient) Terminal(session string, gen uint64) []Frame {
	c.tb.Helper()
	return c.Until(func(f Frame) bool {
		return f.Type == "event" && f.Session == session && IsTerminal(f.Kind) && genOf(f) == gen
	})
}

// IsTerminal reports whether an event kind ends a generation.
func IsTerminal(kind string) bool {
	switch kind {
	case "generation.completed", "generation.stopped", "generation.failed", "generation.interrupted":
		return true
	}
	return false
}

func genOf(f Frame) uint64 {
	var d struct {
		Gen uint64 `json:"gen"`
	}
	_ = json.Unmarshal(f.Data, &d)
	return d.Gen
}

// Assemble joins the delta text of generation gen in frames, failing the
// test on a gap or overlap of offsets.
func Assemble(tb testing.TB, frames []Frame, gen uint64) string {
	tb.Helper()
	var b strings.Builder
	for _, f := range frames {
		if f.Type != "delta" || f.Gen != gen {
			continue
		}
		if f.Offset != b.Len() {
			tb.Fatalf("delta at offset %d, have %d bytes (gap or duplicate)", f.Offset, b.Len())
		}
		b.WriteString(f.Text)
	}
	return b.String()
}

// Closed waits until the server closed the connection and returns the
// close status (-1 if it was not a close frame).
func (c *WSClient) Closed() websocket.StatusCode {
	c.tb.Helper()
	select {
	case <-c.done:
	case <-time.After(DefaultWait):
		c.tb.Fatalf("connection still open after %v", DefaultWait)
	}
	return websocket.CloseStatus(c.Err())
}

// Err is why reading ended, nil while the connection is open.
func (c *WSClient) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close closes the connection (status 1000).
func (c *WSClient) Close() {
	_ = c.conn.Close(websocket.StatusNormalClosure, "")
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
	}
}

// Drop ends the connection without a close handshake, as a lost network
// would.
func (c *WSClient) Drop() {
	_ = c.conn.CloseNow()
	<-c.done
}

// IsCloseError reports whether err is a WebSocket close with code.
func IsCloseError(err error, code websocket.StatusCode) bool {
	var ce websocket.CloseError
	return errors.As(err, &ce) && ce.Code == code
}

// Bind attaches a client made with TryDialWS to a test, for Send and Next.
// It does not close the client when the test ends.
func (c *WSClient) Bind(tb testing.TB) *WSClient {
	c.tb = tb
	return c
}
