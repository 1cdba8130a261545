package testkit

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// SSEMessage is one Server-Sent Events message.
type SSEMessage struct {
	ID    string
	Event string
	Data  string
	Frame Frame // Data decoded
}

// SSEClient reads a text/event-stream response on a goroutine.
type SSEClient struct {
	tb       testing.TB
	Resp     *http.Response
	msgs     *queue[SSEMessage]
	comments chan string
	done     chan struct{}
	cancel   context.CancelFunc
	mu       sync.Mutex
	err      error
}

// sseHTTP opens every stream on a connection of its own: a stream ends
// its connection, and a pooled keep-alive connection (to a server of an
// earlier test that had the same port, say) must never carry one.
var sseHTTP = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// DialSSE GETs url with header and, on a 200 answer, reads its events.
// It returns the response for other statuses (body read, closed) with a nil
// client. The stream is closed when the test ends.
func DialSSE(tb testing.TB, url string, header http.Header) (*SSEClient, *http.Response) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		tb.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := sseHTTP.Do(req)
	for try := 1; err != nil && IsConnectionCut(err) && try <= 3; try++ {
		tb.Logf("GET %s: %v; reconnecting (%d)", url, err, try) // see IsConnectionCut
		resp, err = sseHTTP.Do(req.Clone(ctx))
	}
	if err != nil {
		cancel()
		tb.Fatalf("GET %s: %v", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		cancel()
		return nil, resp
	}
	c := &SSEClient{tb: tb, Resp: resp, msgs: newQueue[SSEMessage](), comments: make(chan string, 1024), done: make(chan struct{}), cancel: cancel}
	go c.readLoop()
	tb.Cleanup(c.Close)
	return c, resp
}

func (c *SSEClient) readLoop() {
	defer close(c.done)
	sc := bufio.NewScanner(c.Resp.Body)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	var m SSEMessage
	var data []string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data != nil {
				m.Data = strings.Join(data, "\n")
				_ = json.Unmarshal([]byte(m.Data), &m.Frame)
				m.Frame.Raw = json.RawMessage(m.Data)
				c.msgs.push(m)
			}
			m, data = SSEMessage{}, nil
		case strings.HasPrefix(line, ":"):
			select {
			case c.comments <- strings.TrimSpace(line[1:]):
			default:
			}
		default:
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "id":
				m.ID = value
			case "event":
				m.Event = value
			case "data":
				data = append(data, value)
			}
		}
	}
	c.mu.Lock()
	c.err = sc.Err()
	c.mu.Unlock()
}

// Next returns the next message, failing the test after DefaultWait.
func (c *SSEClient) Next() SSEMessage {
	c.tb.Helper()
	m, ok, closed := c.msgs.wait(c.done, DefaultWait)
	switch {
	case closed:
		c.mu.Lock()
		err := c.err
		c.mu.Unlock()
		c.tb.Fatalf("SSE stream ended while waiting for a message: %v", err)
	case !ok:
		c.tb.Fatalf("no SSE message within %v", DefaultWait)
	}
	return m
}

// Until returns messages up to and including the first that matches.
func (c *SSEClient) Until(match func(SSEMessage) bool) []SSEMessage {
	c.tb.Helper()
	var got []SSEMessage
	for {
		m := c.Next()
		got = append(got, m)
		if match(m) {
			return got
		}
	}
}

// Comment waits for a comment line and returns its text.
func (c *SSEClient) Comment() string {
	c.tb.Helper()
	select {
	case s := <-c.comments:
		return s
	case <-time.After(DefaultWait):
		c.tb.Fatalf("no SSE comment within %v", DefaultWait)
	}
	return ""
}

// Ended reports whether the stream has ended.
func (c *SSEClient) Ended() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// Close ends the stream from the client side.
func (c *SSEClient) Close() {
	c.cancel()
	_ = c.Resp.Body.Close()
	<-c.done
}

// Frames returns the decoded frames of msgs.
func Frames(msgs []SSEMessage) []Frame {
	fs := make([]Frame, len(msgs))
	for i, m := range msgs {
		fs[i] = m.Frame
	}
	return fs
}
