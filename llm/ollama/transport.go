package ollama

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// newHTTPClient builds the client the api package uses. It has no
// Client.Timeout (streams are bounded by the watchdog instead), ignores
// proxy environment variables (the model server is a direct peer, and only
// the config package reads the environment), and keeps enough idle
// connections for many concurrent generations.
func newHTTPClient(cfg *Config) (*http.Client, *http.Transport) {
	dialer := &net.Dialer{Timeout: cfg.ConnectTimeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   cfg.ConnectTimeout,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		// Ollama does not compress; asking for gzip would only let a proxy
		// in between buffer the stream.
		DisableCompression: true,
	}
	return &http.Client{Transport: &trackingTransport{base: tr}}, tr
}

// streamTrack records what the transport saw of one streaming response, so
// Stream can tell a cut connection from a clean end and from an error status
// with an empty body (for all of which the api client returns nil). It is
// only touched on the goroutine that runs Stream: the api client calls
// RoundTrip and reads the body there.
type streamTrack struct {
	status  int   // response status; 0 if none arrived
	readErr error // first read error other than io.EOF
	eof     bool  // the body ended cleanly
}

type trackKey struct{}

// trackingTransport wraps the response body of requests whose context
// carries a *streamTrack.
type trackingTransport struct {
	base http.RoundTripper
}

func (t *trackingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	if st, ok := req.Context().Value(trackKey{}).(*streamTrack); ok {
		st.status = resp.StatusCode
		resp.Body = &trackedBody{ReadCloser: resp.Body, st: st}
	}
	return resp, nil
}

type trackedBody struct {
	io.ReadCloser
	st *streamTrack
}

func (b *trackedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		if errors.Is(err, io.EOF) {
			b.st.eof = true
		} else if b.st.readErr == nil {
			b.st.readErr = err
		}
	}
	return n, err
}

// watchdog cancels a generation that waits too long for its first record or
// between two records. Instead of resetting a timer per record it notes the
// time of the last record and re-arms itself lazily when it fires.
type watchdog struct {
	first, idle time.Duration
	start       time.Time
	cancel      context.CancelCauseFunc
	timer       *time.Timer

	started bool         // a record has arrived; Stream goroutine only
	last    atomic.Int64 // nanoseconds since start when the last record was handled; -1 before the first
	busy    atomic.Bool  // inside onDelta: time there does not count
}

func startWatchdog(first, idle time.Duration, cancel context.CancelCauseFunc) *watchdog {
	w := &watchdog{first: first, idle: idle, start: time.Now(), cancel: cancel}
	w.last.Store(-1)
	w.timer = time.AfterFunc(first, w.fire)
	return w
}

func (w *watchdog) since() int64 { return int64(time.Since(w.start)) }

func (w *watchdog) fire() {
	if w.busy.Load() {
		w.timer.Reset(w.idle)
		return
	}
	last := w.last.Load()
	if last < 0 {
		w.cancel(ErrFirstTokenTimeout)
		return
	}
	gap := time.Duration(w.since() - last)
	if gap >= w.idle {
		w.cancel(ErrIdleTimeout)
		return
	}
	w.timer.Reset(w.idle - gap)
}

// enter marks the arrival of a record and the start of its handling.
func (w *watchdog) enter() {
	w.busy.Store(true)
	if !w.started {
		w.started = true
		// From now on the idle limit applies, which may be shorter than
		// what is left of the first-token limit.
		w.timer.Reset(w.idle)
	}
}

// leave marks the end of a record's handling: the idle gap starts now.
func (w *watchdog) leave() {
	w.last.Store(w.since())
	w.busy.Store(false)
}

func (w *watchdog) stop() { w.timer.Stop() }
