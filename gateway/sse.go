package gateway

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/lesismal/nbio/nbhttp"

	"github.com/parleyhq/parley/actors"
)

// DefaultSSEKeepalive is how often an idle SSE stream gets a comment line.
const DefaultSSEKeepalive = 15 * time.Second

// sseStream is one Server-Sent Events response. The handler hijacks the
// connection from nbio, because on nbio r.Context() is not cancelled when
// the client leaves, Flush hides write errors, and the engine's keepalive
// read deadline would cut a long stream: after the hijack the read
// deadline is cleared, every write goes straight to nbio's non-blocking
// connection (bounded by MaxWriteBuffer), and the engine's close callback
// tells the stream when the client has gone.
type sseStream struct {
	conn net.Conn // nbio's connection, written without blocking
	mu   sync.Mutex
	ac   *actors.Conn
	done bool
}

// Write sends event, delta and queued frames as SSE messages. Acks are not part
// of the stream; an error (the attach was refused after all) ends it.
func (s *sseStream) Write(f *actors.Frame) {
	if f.Type == actors.FrameError {
		s.Close(0, "")
		return
	}
	if f.Type != actors.FrameEvent && f.Type != actors.FrameDelta && f.Type != actors.FrameQueued {
		return
	}
	b := make([]byte, 0, len(f.JSON)+len(f.Cursor)+32)
	b = append(b, "id: "...)
	b = append(b, f.Cursor...)
	b = append(b, "\nevent: "...)
	b = append(b, f.Type...)
	b = append(b, "\ndata: "...)
	b = append(b, f.JSON...) // one line: JSON frames never hold a raw newline
	b = append(b, "\n\n"...)
	s.write(b)
}

var keepaliveComment = []byte(": keepalive\n\n")

func (s *sseStream) write(b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done {
		return
	}
	if _, err := s.conn.Write(b); err != nil {
		s.done = true
		_ = s.conn.Close()
	}
}

// Close ends the stream.
func (s *sseStream) Close(int, string) {
	s.mu.Lock()
	s.done = true
	s.mu.Unlock()
	_ = s.conn.Close()
}

// handleSSE streams a session's frames (PROTOCOL.md section 4): the events
// after the cursor in Last-Event-ID or ?after=, the running generation's
// text from the cursor's offset, then live frames, with a comment line at
// least every 15 s.
func (s *Server) handleSSE(w http.ResponseWriter, r *http.Request) {
	user, e := s.auth.user(r, true)
	if e != nil {
		writeError(w, e)
		return
	}
	id := r.PathValue("id")
	cursor := r.Header.Get("Last-Event-ID")
	if cursor == "" {
		cursor = r.URL.Query().Get("after")
	}
	cursor = strings.TrimSpace(cursor)
	if _, err := actors.ParseCursor(cursor); err != nil {
		writeError(w, actors.Errorf(actors.CodeBadRequest, "%v", err))
		return
	}
	// Answer a missing or foreign session with a plain HTTP error before
	// the stream starts.
	ctx, cancel := timeoutCtx(r)
	_, err := s.cfg.System.Detail(ctx, user, id)
	cancel()
	if err != nil {
		replyError(w, err)
		return
	}
	hj, ok := w.(http.Hijacker)
	if !ok {
		writeError(w, &actors.Error{Code: actors.CodeInternal, Message: "streaming is not supported here"})
		return
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		s.log.Warn("sse hijack failed", slog.Any(logKeyError, err))
		return
	}
	raw := conn
	if hc, ok := conn.(*nbhttp.Conn); ok {
		raw = hc.Conn
	}
	_ = raw.SetReadDeadline(time.Time{})
	s.counters.sseOpened.Add(1)
	st := &sseStream{conn: raw}
	head := fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"+
		"X-Accel-Buffering: no\r\nConnection: keep-alive\r\nDate: %s\r\n\r\n: stream %s\n\n",
		time.Now().UTC().Format(http.TimeFormat), id)
	st.write([]byte(head))

	s.mu.Lock()
	s.sse[raw] = st
	s.mu.Unlock()
	st.ac = s.cfg.System.Connect(user, st)
	st.ac.Deliver(&actors.Command{Type: actors.CmdAttach, Session: id, After: cursor})
}

// sseClosed is the engine's close callback for a hijacked SSE connection.
func (s *Server) sseClosed(c net.Conn) {
	s.mu.Lock()
	st, ok := s.sse[c]
	delete(s.sse, c)
	s.mu.Unlock()
	if !ok {
		return
	}
	st.mu.Lock()
	st.done = true
	st.mu.Unlock()
	if st.ac != nil {
		st.ac.Closed()
	}
}
