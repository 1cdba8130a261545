package testkit

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// scriptedCore is the part of ScriptedOllama and ScriptedOpenAI that does
// not depend on the wire format: the HTTP server, the queue of pushed
// scripts, the chat requests received (of type R) and the count of those
// the client cancelled. Both servers embed it, so its exported methods are
// theirs; each wraps requests and waitRequests, whose results go doc would
// otherwise show as []*R, in its own exported Requests and WaitRequests.
type scriptedCore[R any] struct {
	name      string          // "scripted ollama", for failure messages
	script    func(*R) Script // the configured Script, or nil
	srv       *httptest.Server
	quit      chan struct{}
	closeOnce sync.Once

	mu        sync.Mutex
	queue     []Script
	reqs      []*R
	changed   chan struct{} // closed and replaced when reqs or a cancellation changes
	cancelled int
}

// start serves h on 127.0.0.1 until tb's test ends. name starts failure
// messages; script chooses the script of a request for which none was
// pushed (nil for the default reply).
func (s *scriptedCore[R]) start(tb testing.TB, name string, script func(*R) Script, h http.Handler) {
	s.name, s.script = name, script
	s.quit = make(chan struct{})
	s.changed = make(chan struct{})
	s.srv = httptest.NewServer(h)
	tb.Cleanup(s.Close)
}

// Push queues scripts; each chat request takes the first queued one.
func (s *scriptedCore[R]) Push(scripts ...Script) {
	s.mu.Lock()
	s.queue = append(s.queue, scripts...)
	s.mu.Unlock()
}

// requests returns the chat requests received so far, in arrival order.
func (s *scriptedCore[R]) requests() []*R {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*R(nil), s.reqs...)
}

// CancelledCount is how many chat requests the client cancelled (closed
// its connection) while their script was running.
func (s *scriptedCore[R]) CancelledCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cancelled
}

// waitRequests waits until at least n chat requests have arrived and
// returns them, failing tb after 10 s.
func (s *scriptedCore[R]) waitRequests(tb testing.TB, n int) []*R {
	tb.Helper()
	s.waitFor(tb, fmt.Sprintf("%d chat requests", n), func() bool { return len(s.reqs) >= n })
	return s.requests()
}

// WaitCancelled waits until at least n chat requests were cancelled by the
// client. It fails tb after 10 s; call it from the test goroutine.
func (s *scriptedCore[R]) WaitCancelled(tb testing.TB, n int) {
	tb.Helper()
	s.waitFor(tb, fmt.Sprintf("%d cancelled chat requests", n), func() bool { return s.cancelled >= n })
}

func (s *scriptedCore[R]) waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		ok, ch := cond(), s.changed
		s.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			tb.Fatalf("%s: timed out waiting for %s", s.name, what)
		}
	}
}

// notifyLocked wakes waiters; s.mu must be held.
func (s *scriptedCore[R]) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// CloseClientConnections cuts every open connection at once, as a server
// that dies mid-stream would.
func (s *scriptedCore[R]) CloseClientConnections() { s.srv.CloseClientConnections() }

// Close stops the server: running scripts end at their next step, held
// and blocked ones at once. It is safe to call more than once.
func (s *scriptedCore[R]) Close() {
	s.closeOnce.Do(func() {
		close(s.quit)
		s.srv.Close()
	})
}

// arrive records req as the next chat request, setting *index (req's
// Index) to its arrival order, and takes the first queued script, or nil
// if none is.
func (s *scriptedCore[R]) arrive(req *R, index *int) Script {
	s.mu.Lock()
	defer s.mu.Unlock()
	*index = len(s.reqs)
	s.reqs = append(s.reqs, req)
	s.notifyLocked()
	var script Script
	if len(s.queue) > 0 {
		script, s.queue = s.queue[0], s.queue[1:]
	}
	return script
}

// scriptFor is the script req plays: the pushed one it took if any, else
// the configured Script's choice, else TextReply(DefaultScriptedReply, 8).
func (s *scriptedCore[R]) scriptFor(pushed Script, req *R) Script {
	switch {
	case pushed != nil:
		return pushed
	case s.script != nil:
		return s.script(req)
	}
	return TextReply(DefaultScriptedReply, 8)
}

// newStream returns the stream on which a script plays onto w for the
// request r, whose state is st. begin sets the headers of a 200 response.
func (s *scriptedCore[R]) newStream(w http.ResponseWriter, r *http.Request, st *requestState, begin func(http.Header)) stream {
	return stream{
		w: w, rc: http.NewResponseController(w), ctx: r.Context(), quit: s.quit, begin: begin,
		cancel: func() { s.markCancelled(st) },
	}
}

// markCancelled records that the client went away from the request whose
// state is st, once.
func (s *scriptedCore[R]) markCancelled(st *requestState) {
	select {
	case <-s.quit:
		return // the server is closing: not the client's doing
	default:
	}
	if !st.cancel() {
		return
	}
	s.mu.Lock()
	s.cancelled++
	s.notifyLocked()
	s.mu.Unlock()
}

// requestState is what ScriptedRequest and ScriptedOpenAIRequest both
// track of a request while its script plays: whether and when the client
// cancelled it, and whether the server is done with it.
type requestState struct {
	cancelled chan struct{}
	finished  chan struct{}
	mu        sync.Mutex
	cancelAt  time.Time
}

func newRequestState() requestState {
	return requestState{cancelled: make(chan struct{}), finished: make(chan struct{})}
}

// Cancelled is closed when the client cancelled the request (closed the
// connection) while its script was running.
func (r *requestState) Cancelled() <-chan struct{} { return r.cancelled }

// CancelledAt reports when the client cancelled the request, if it did.
func (r *requestState) CancelledAt() (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cancelAt, !r.cancelAt.IsZero()
}

// Finished is closed when the server is done with the request.
func (r *requestState) Finished() <-chan struct{} { return r.finished }

// cancel marks the request cancelled now and reports whether it was not
// already.
func (r *requestState) cancel() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.cancelAt.IsZero() {
		return false
	}
	r.cancelAt = time.Now()
	close(r.cancelled)
	return true
}

// stream is one response a script plays onto, and the part of playing
// that does not depend on the wire format: the steps that mean the same
// to both servers, split and flushed writes, and waits that end when the
// client goes away or the server closes.
type stream struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	ctx     context.Context
	quit    <-chan struct{}   // closed when the server closes
	cancel  func()            // records that the client went away
	begin   func(http.Header) // sets the headers of the 200 response
	started bool              // the 200 response has begun
}

// play plays script with step, which plays one step and reports whether
// the response goes on, until a step ends the response or the client goes
// away.
func (s *stream) play(script Script, step func(Step) bool) {
	for _, st := range script {
		if !step(st) {
			return
		}
		if s.ctx.Err() != nil {
			s.cancel()
			return
		}
	}
}

// common plays st if it is a step that both servers play alike, reporting
// whether the response goes on; ok is false for any other step.
func (s *stream) common(st Step) (goOn, ok bool) {
	switch st.kind {
	case kindRaw:
		return s.write(st.raw, st, 0), true
	case kindDelay:
		return wait(s, time.After(st.d)), true
	case kindHold:
		st.hold.reachedOnce.Do(func() { close(st.hold.reached) })
		return wait(s, (<-chan struct{})(st.hold.release)), true
	case kindBlock:
		wait[struct{}](s, nil)
		return false, true
	case kindHeader:
		s.w.Header().Add(st.text, string(st.raw))
		return true, true
	case kindResponse:
		if st.contentType != "" {
			s.w.Header().Set("Content-Type", st.contentType)
		}
		s.w.WriteHeader(st.status)
		io.WriteString(s.w, st.text)
		return false, true
	case kindCut:
		if conn, _, err := s.rc.Hijack(); err == nil {
			conn.Close()
			return false, true
		}
		panic(http.ErrAbortHandler)
	case kindEnd:
		return false, true
	}
	return false, false
}

// write sends b as part of the 200 response, split as st says, each part
// flushed. at is where the step's text starts in b (SplitAt offsets count
// from there; 0 means from the start of b). It reports whether the client
// is still there.
func (s *stream) write(b []byte, st Step, at int) bool {
	if !s.started {
		s.begin(s.w.Header())
		s.started = true
	}
	var cuts []int
	switch {
	case st.splitEvery > 0:
		for c := st.splitEvery; c < len(b); c += st.splitEvery {
			cuts = append(cuts, c)
		}
	case len(st.splitAt) > 0:
		last := 0
		for _, off := range st.splitAt {
			if c := at + off; c > last && c < len(b) {
				cuts = append(cuts, c)
				last = c
			}
		}
	}
	pause := st.pause
	if pause == 0 {
		pause = time.Millisecond
	}
	prev := 0
	for i, c := range append(cuts, len(b)) {
		if i > 0 && !wait(s, time.After(pause)) {
			return false
		}
		if _, err := s.w.Write(b[prev:c]); err != nil {
			s.cancel()
			return false
		}
		if err := s.rc.Flush(); err != nil {
			s.cancel()
			return false
		}
		prev = c
	}
	return true
}

// wait blocks until ch yields (or is closed), the client goes away or the
// server closes; it reports whether the response goes on. A nil ch waits
// for the client or the server only.
func wait[T any](s *stream, ch <-chan T) bool {
	select {
	case <-ch:
		return true
	case <-s.ctx.Done():
		s.cancel()
		return false
	case <-s.quit:
		return false
	}
}

// writeGinNotFound answers as gin does for an unknown route.
func writeGinNotFound(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusNotFound)
	io.WriteString(w, "404 page not found")
}
