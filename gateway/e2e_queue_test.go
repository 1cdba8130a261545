package gateway_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/parleyhq/parley/internal/testkit"
)

// countingProxy is a reverse proxy in front of the real Ollama that keeps
// the body of every chat request that passed through it, so a test can
// tell which requests reached the model server.
type countingProxy struct {
	srv  *httptest.Server
	mu   sync.Mutex
	chat [][]byte
}

func newCountingProxy(t *testing.T, target string) *countingProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &countingProxy{}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.FlushInterval = -1 // stream every record at once, as Ollama writes it
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/chat" {
			body, _ := io.ReadAll(r.Body)
			p.mu.Lock()
			p.chat = append(p.chat, body)
			p.mu.Unlock()
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *countingProxy) chats() [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([][]byte(nil), p.chat...)
}

// TestE2EQueue runs eleven sessions against the real Ollama with one
// generation at a time per model: each is sent in turn while the first
// runs, the seventh is stopped while it waits in line, and the ten others
// complete in the order they were sent. The stopped one never reached the
// model server (a proxy in front of Ollama sees every request).
func TestE2EQueue(t *testing.T) {
	base := testkit.RealOllama(t)
	t.Parallel()
	proxy := newCountingProxy(t, base)
	s := newStack(t, stackOpts{ollamaURL: proxy.srv.URL, model: testkit.TinyModel, concurrency: 1})
	const n, stopped = 11, 6 // the seventh
	type sess struct {
		c      *testkit.WSClient
		id     string
		system string
	}
	ss := make([]sess, n)
	for i := range ss {
		c := s.dial("")
		sys := "You are session " + string(rune('A'+i)) + "."
		ss[i] = sess{c: c, id: create(t, c, map[string]any{"system": sys}), system: sys}
	}
	var stoppedFrames []testkit.Frame
	for i := range ss {
		send(t, ss[i].c, ss[i].id, e2ePrompt)
		if i == stopped {
			queuedAt(t, ss[i].c, ss[i].id, i) // places behind the running first
			ack, frames := stopReply(t, ss[i].c, ss[i].id, 3)
			if !*ack.Stopped {
				t.Fatalf("stop: %s", ack.Raw)
			}
			stoppedFrames = frames
		}
	}
	type done struct {
		i    int
		kind string
		at   string
	}
	var ends []done
	for i := range ss {
		fs := stoppedFrames
		if i != stopped {
			fs = ss[i].c.Terminal(ss[i].id, 3)
		}
		last := fs[len(fs)-1]
		var at struct{ At string }
		decodeData(t, testkit.Frame{Data: last.Raw}, &at)
		ends = append(ends, done{i, last.Kind, at.At})
		switch {
		case i == stopped && (last.Kind != "generation.stopped" || last.DataText() != ""):
			t.Errorf("session %d: %s, want stopped with no text", i, last.Raw)
		case i != stopped && last.Kind != "generation.completed":
			t.Errorf("session %d: %s, want completed", i, last.Raw)
		}
	}
	// Ten completed, in the order they were sent (event times from the
	// server's clock; RFC 3339 with milliseconds sorts as text).
	var completed []done
	for _, d := range ends {
		if d.i != stopped {
			completed = append(completed, d)
		}
	}
	if !sort.SliceIsSorted(completed, func(a, b int) bool { return completed[a].at < completed[b].at }) {
		t.Errorf("completions out of send order: %+v", completed)
	}
	reqs := proxy.chats()
	if len(reqs) != n-1 {
		t.Errorf("Ollama got %d chat requests, want %d", len(reqs), n-1)
	}
	for i, body := range reqs {
		if strings.Contains(string(body), ss[stopped].system) {
			t.Errorf("request %d is the stopped session's: it reached the model server", i)
		}
		if want := i; want < n-1 {
			if want >= stopped {
				want++
			}
			if !strings.Contains(string(body), ss[want].system) {
				t.Errorf("request %d is not session %d's: %s", i, want, body)
			}
		}
	}
}
