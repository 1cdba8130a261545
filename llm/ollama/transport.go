package ollama

import (
	"errors"
	"io"
	"net/http"

	"github.com/parleyhq/parley/llm/internal/upstream"
)

// newHTTPClient builds the client the api package uses: the shared
// upstream transport (no proxy, no Client.Timeout; streams are bounded by
// the watchdog instead) under a tracking layer.
func newHTTPClient(cfg *Config) (*http.Client, *http.Transport) {
	tr := upstream.NewTransport(cfg.ConnectTimeout)
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
