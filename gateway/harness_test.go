package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/actors"
	"github.com/parleyhq/parley/gateway"
	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/llm"
	"github.com/parleyhq/parley/llm/ollama"
)

// stack is a whole Parley in one test: a real embedded NATS with
// JetStream, the actor system, the nbio gateway on 127.0.0.1 and a model
// server (scripted or real).
type stack struct {
	t        testing.TB
	nats     *testkit.NATS
	sys      *actors.System
	srv      *gateway.Server
	upstream *testkit.ScriptedOllama // nil when running against a real one
	base     string                  // http://127.0.0.1:port
	// http is this stack's own client: its keep-alive connections never
	// outlive the stack into another test's server on the same port.
	http *http.Client
}

type stackOpts struct {
	dir          string // data dir to reuse (restart tests)
	ollamaURL    string // real model server; "" starts a scripted one
	auth         gateway.AuthConfig
	model        string
	frameBytes   int
	idleTimeout  time.Duration
	chunkBytes   int
	ollamaConfig ollama.Config
	scripted     testkit.ScriptedConfig
	sseKeepalive time.Duration
	pingInterval time.Duration
	// Upstream discipline (zero: no limit, no retry, no titles, the
	// window the model server reports).
	concurrency   int
	retry         actors.RetryPolicy
	titles        bool
	contextTokens int
	// Flood and slow-reader limits (zero: the gateway's defaults).
	commandRate    float64
	commandBurst   int
	maxWriteBuffer int
	maxReplyBytes  int
}

func newStack(t testing.TB, o stackOpts) *stack {
	t.Helper()
	s := &stack{t: t, http: &http.Client{Transport: &http.Transport{}}}
	s.nats = testkit.NewNATS(t, o.dir, "")
	store := s.nats.Store(t)
	url := o.ollamaURL
	if url == "" {
		s.upstream = testkit.NewScriptedOllama(t, o.scripted)
		url = s.upstream.URL()
	}
	oc := o.ollamaConfig
	oc.BaseURL = url
	oc.Logger = testkit.Logger(t)
	prov, err := ollama.New(oc)
	if err != nil {
		t.Fatal(err)
	}
	if o.model == "" {
		o.model = "tiny"
	}
	sys, err := actors.New(actors.Config{
		Store: store, Index: store, Snapshots: store, Provider: prov, DefaultModel: o.model,
		ChunkBytes: o.chunkBytes, Logger: testkit.Logger(t),
		Concurrency: o.concurrency, Retry: o.retry, Titles: o.titles, ContextTokens: o.contextTokens,
		MaxReplyBytes: o.maxReplyBytes,
	})
	if err != nil {
		t.Fatal(err)
	}
	s.sys = sys
	srv, err := gateway.New(gateway.Config{
		Listen: "127.0.0.1:0", System: sys, Auth: o.auth,
		MaxFrameBytes: o.frameBytes, IdleTimeout: o.idleTimeout, Logger: testkit.Logger(t),
		SSEKeepalive: o.sseKeepalive, PingInterval: o.pingInterval,
		CommandRate: o.commandRate, CommandBurst: o.commandBurst, MaxWriteBuffer: o.maxWriteBuffer,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	s.srv = srv
	s.base = "http://" + srv.Addr()
	t.Cleanup(s.stop)
	return s
}

// stop shuts the stack down as `parley serve` does; safe to call twice.
func (s *stack) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_ = s.sys.Drain(ctx)
	_ = s.srv.Shutdown(ctx)
	_ = s.sys.Shutdown(ctx)
	s.nats.Close()
	s.http.CloseIdleConnections()
}

func (s *stack) wsURL() string { return "ws" + strings.TrimPrefix(s.base, "http") + "/v1/ws" }

// dial opens a WebSocket; token "" sends no Authorization header.
func (s *stack) dial(token string) *testkit.WSClient {
	s.t.Helper()
	var h http.Header
	if token != "" {
		h = http.Header{"Authorization": {"Bearer " + token}}
	}
	return testkit.DialWS(s.t, s.wsURL(), h)
}

// create makes a session over ws and returns its id.
func create(t testing.TB, c *testkit.WSClient, fields map[string]any) string {
	t.Helper()
	if fields == nil {
		fields = map[string]any{}
	}
	fields["type"] = "create"
	ack := c.Ack(c.Command(fields))
	if ack.Session == "" {
		t.Fatalf("create ack without session: %s", ack.Raw)
	}
	return ack.Session
}

// send sends content and returns the ack.
func send(t testing.TB, c *testkit.WSClient, session, content string) testkit.Frame {
	t.Helper()
	return c.Ack(c.Command(map[string]any{"type": "send", "session": session, "content": content}))
}

// do makes an HTTP request with an optional JSON body and bearer token and
// returns the status and body.
func (s *stack) do(method, path, token string, body any) (int, []byte) {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		switch b := body.(type) {
		case string:
			rd = strings.NewReader(b)
		default:
			j, _ := json.Marshal(b)
			rd = bytes.NewReader(j)
		}
	}
	req, err := http.NewRequest(method, s.base+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := s.http.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

var _ llm.Provider = (*ollama.Provider)(nil)

// jsonField reads a dotted path of object fields from a JSON body as a
// string ("" if absent).
func jsonField(t testing.TB, body []byte, path string) string {
	t.Helper()
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("body %q: %v", body, err)
	}
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = m[k]
	}
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return ""
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}

// genOf is the gen of a terminal event frame.
func genOf(t testing.TB, f testkit.Frame) uint64 {
	t.Helper()
	var d struct {
		Gen uint64 `json:"gen"`
	}
	if err := json.Unmarshal(f.Data, &d); err != nil || d.Gen == 0 {
		t.Fatalf("no gen in %s", f.Raw)
	}
	return d.Gen
}

// stopReply sends stop for session and returns its ack and the frames up
// to and including generation gen's terminal event (deltas that came
// before the ack included). The ack must come before the stopped event,
// as for every command (docs/protocol.md, answer order).
func stopReply(t testing.TB, c *testkit.WSClient, session string, gen uint64) (testkit.Frame, []testkit.Frame) {
	t.Helper()
	ack, before := c.Reply(c.Command(map[string]any{"type": "stop", "session": session}))
	for _, f := range before {
		if f.Type == "event" && testkit.IsTerminal(f.Kind) {
			t.Fatalf("the generation's end came before the stop's ack: %s", f.Raw)
		}
	}
	if ack.Type != "ack" || ack.Stopped == nil {
		t.Fatalf("stop answered %s", ack.Raw)
	}
	if !*ack.Stopped {
		return ack, before
	}
	return ack, append(before, c.Terminal(session, gen)...)
}
