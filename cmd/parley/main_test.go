package main

// These tests run the real command in process: run() with a map for the
// environment, `serve` until its context is cancelled (which is what
// Ctrl-C does), a real embedded NATS on a temp data dir, real HTTP and
// WebSocket on 127.0.0.1, and the scripted Ollama as the model server.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/events"
	"github.com/parleyhq/parley/internal/testkit"
)

// waitTimeout bounds every poll in this file.
const waitTimeout = 20 * time.Second

// syncBuffer is an io.Writer that the serve goroutine (and the NATS and
// log goroutines under it) can write while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is the process environment as run() sees it.
type env map[string]string

func (e env) getenv(k string) string { return e[k] }

// with returns a copy of e with the pairs k1, v1, k2, v2… set.
func (e env) with(kv ...string) env {
	out := make(env, len(e)+len(kv)/2)
	for k, v := range e {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

// baseEnv is a fresh data dir, free ports for HTTP and the NATS listener,
// and ollamaURL as the model server with model "tiny".
func baseEnv(t testing.TB, ollamaURL string) env {
	return env{
		"PARLEY_DATA_DIR":         t.TempDir(),
		"PARLEY_LISTEN":           "127.0.0.1:0",
		"PARLEY_NATS_LISTEN":      "127.0.0.1:0",
		"OLLAMA_HOST":             ollamaURL,
		"PARLEY_MODEL":            "tiny",
		"PARLEY_SHUTDOWN_TIMEOUT": "10s",
		// Titles add a request to the model and an event to the log
		// after each first turn; TestServeTitles tests them.
		"PARLEY_TITLES": "off",
	}
}

// newUpstream is a scripted Ollama that has the model "tiny".
func newUpstream(t testing.TB) *testkit.ScriptedOllama {
	return testkit.NewScriptedOllama(t, testkit.ScriptedConfig{Models: []string{"tiny"}})
}

// closedAddr is a loopback host:port that nothing listens on (it was free
// a moment ago).
func closedAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// waitFor polls cond until it holds, failing t after waitTimeout.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitTimeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// server is one `parley serve` running in a goroutine.
type server struct {
	t              testing.TB
	env            env
	cancel         context.CancelFunc
	done           chan error
	stdout, stderr *syncBuffer

	startLine string
	base      string // http://127.0.0.1:port
	dataDir   string // as the start line shows it
	natsURL   string // nats://127.0.0.1:port, the embedded server's listener
	natsAddr  string // 127.0.0.1:port
	upstream  string // the rest of the line after "model server "

	stopped bool
	err     error
}

// startLineRE parses the line serve prints once it listens.
var startLineRE = regexp.MustCompile(`^parley listening on http://(\S+)  data (.+?)  embedded NATS (nats://(\S+))  model server (.*)$`)

// startServe runs `parley serve` with e and waits for its start line.
// The server is stopped when the test ends, if the test did not stop it.
func startServe(t testing.TB, e env) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	s := &server{t: t, env: e, cancel: cancel, done: make(chan error, 1), stdout: &syncBuffer{}, stderr: &syncBuffer{}}
	go func() { s.done <- run(ctx, []string{"serve"}, e.getenv, s.stdout, s.stderr) }()
	t.Cleanup(func() {
		if !s.stopped {
			s.cancel()
			select {
			case <-s.done:
			case <-time.After(waitTimeout):
				t.Errorf("serve did not stop within %v after the test; stderr:\n%s", waitTimeout, s.stderr)
			}
		}
	})

	deadline := time.NewTimer(waitTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		out := s.stdout.String()
		if i := strings.IndexByte(out, '\n'); i >= 0 {
			s.startLine = out[:i]
			break
		}
		select {
		case err := <-s.done:
			s.stopped, s.err = true, err
			t.Fatalf("serve returned before its start line: %v\nstderr:\n%s", err, s.stderr)
		case <-deadline.C:
			t.Fatalf("no start line within %v; stderr:\n%s", waitTimeout, s.stderr)
		case <-tick.C:
		}
	}
	m := startLineRE.FindStringSubmatch(s.startLine)
	if m == nil {
		t.Fatalf("start line %q does not match %s", s.startLine, startLineRE)
	}
	s.base, s.dataDir, s.natsURL, s.natsAddr, s.upstream = "http://"+m[1], m[2], m[3], m[4], m[5]
	return s
}

// stop cancels serve's context, as Ctrl-C does, and returns what run
// returned.
func (s *server) stop() error {
	s.t.Helper()
	if s.stopped {
		return s.err
	}
	s.cancel()
	select {
	case s.err = <-s.done:
		s.stopped = true
	case <-time.After(waitTimeout):
		s.t.Fatalf("serve did not return within %v of its context ending; stderr:\n%s", waitTimeout, s.stderr)
	}
	return s.err
}

func (s *server) wsURL() string { return "ws" + strings.TrimPrefix(s.base, "http") + "/v1/ws" }

// cli runs one short command (replay, sessions, …) to its end.
func cli(t testing.TB, e env, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	var out, errOut syncBuffer
	err = run(ctx, args, e.getenv, &out, &errOut)
	return out.String(), errOut.String(), err
}

// mustCLI is cli that fails the test on an error.
func mustCLI(t testing.TB, e env, args ...string) string {
	t.Helper()
	out, errOut, err := cli(t, e, args...)
	if err != nil {
		t.Fatalf("parley %s: %v\nstderr:\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

// do makes an HTTP request with an optional JSON body.
func do(t testing.TB, method, url string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

type message struct {
	Seq     uint64 `json:"seq"`
	Role    string `json:"role"`
	Content string `json:"content"`
	State   string `json:"state"`
}

type sessionDetail struct {
	ID         string    `json:"id"`
	LastSeq    uint64    `json:"last_seq"`
	Generating bool      `json:"generating"`
	Messages   []message `json:"messages"`
}

// chat creates a session over HTTP and sends content to it; it returns
// the session id.
func chat(t testing.TB, base, content string) string {
	t.Helper()
	status, body := do(t, "POST", base+"/v1/sessions", map[string]any{"title": "cli test"})
	var info sessionDetail
	if err := json.Unmarshal(body, &info); status != http.StatusCreated || err != nil || info.ID == "" {
		t.Fatalf("create: %d %s", status, body)
	}
	status, body = do(t, "POST", base+"/v1/sessions/"+info.ID+"/messages", map[string]any{"content": content})
	var ack struct{ Seq uint64 }
	if err := json.Unmarshal(body, &ack); status != http.StatusAccepted || err != nil || ack.Seq != 2 {
		t.Fatalf("send: %d %s (want 202 with seq 2)", status, body)
	}
	return info.ID
}

func detail(t testing.TB, base, id string) sessionDetail {
	t.Helper()
	status, body := do(t, "GET", base+"/v1/sessions/"+id, nil)
	var d sessionDetail
	if err := json.Unmarshal(body, &d); status != http.StatusOK || err != nil {
		t.Fatalf("GET session: %d %s", status, body)
	}
	return d
}

// waitReply polls the session until its last message is an assistant
// reply in state want; it fails early on another final state.
func waitReply(t testing.TB, base, id, want string) sessionDetail {
	t.Helper()
	var d sessionDetail
	waitFor(t, "the reply of session "+id+" to be "+want, func() bool {
		d = detail(t, base, id)
		if len(d.Messages) == 0 {
			return false
		}
		last := d.Messages[len(d.Messages)-1]
		if last.Role != "assistant" || last.State == "generating" {
			return false
		}
		if last.State != want {
			t.Fatalf("reply ended %s, want %s: %+v", last.State, want, d)
		}
		return true
	})
	return d
}

// replayJSON runs `parley replay ID --json` and checks that it is one
// event per line, seq 1..N without a gap. It returns the events and the
// raw output.
func replayJSON(t testing.TB, e env, id string) ([]events.Event, string) {
	t.Helper()
	out := mustCLI(t, e, "replay", id, "--json")
	var evs []events.Event
	for i, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		var ev events.Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("replay --json line %d is not one JSON event: %v\n%s", i+1, err, out)
		}
		if ev.Seq != uint64(i+1) || ev.Session != id {
			t.Fatalf("replay --json line %d has session %s seq %d, want %s seq %d\n%s", i+1, ev.Session, ev.Seq, id, i+1, out)
		}
		evs = append(evs, ev)
	}
	return evs, out
}

func kinds(evs []events.Event) []string {
	var ks []string
	for _, ev := range evs {
		ks = append(ks, string(ev.Kind))
	}
	return ks
}

// assertInOrder fails unless each of want occurs in s, in that order.
func assertInOrder(t testing.TB, s string, want ...string) {
	t.Helper()
	rest := s
	for _, w := range want {
		i := strings.Index(rest, w)
		if i < 0 {
			t.Fatalf("%q missing (or out of order) in:\n%s", w, s)
		}
		rest = rest[i+len(w):]
	}
}

// assertSubsequence fails unless want occurs in got in order (other
// kinds, such as generation.chunk, may come between).
func assertSubsequence(t testing.TB, got []string, want ...string) {
	t.Helper()
	i := 0
	for _, k := range got {
		if i < len(want) && k == want[i] {
			i++
		}
	}
	if i < len(want) {
		t.Fatalf("kinds %v do not contain %v in order", got, want)
	}
}

// TestServeReplaySessionsRestart is the whole life of a data dir: serve,
// one chat turn over HTTP, replay it while the server runs (through
// PARLEY_NATS_URL, and through the listener), refuse to open the held data
// dir, stop cleanly, replay from the stopped server's data dir, list it
// with `sessions`, and start again on the same dir with the session and
// its seq intact.
func TestServeReplaySessionsRestart(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	const reply = "Hello from Parley."
	up.Push(testkit.TokenReply(time.Millisecond, "Hello", " from", " Parley."))
	e := baseEnv(t, up.URL())
	s := startServe(t, e)

	if s.dataDir != e["PARLEY_DATA_DIR"] {
		t.Errorf("start line data dir %q, want %q", s.dataDir, e["PARLEY_DATA_DIR"])
	}
	if want := "ollama " + up.URL() + " (model tiny)"; s.upstream != want {
		t.Errorf("start line model server %q, want %q (no note: the model server answers and has the model)", s.upstream, want)
	}

	id := chat(t, s.base, "hi")
	d := waitReply(t, s.base, id, "completed")
	if got := d.Messages[len(d.Messages)-1].Content; got != reply {
		t.Fatalf("reply %q, want %q", got, reply)
	}
	wantKinds := []string{"session.created", "message.user", "generation.started", "generation.completed"}

	var before string // replay --json while running
	var beforeEvents []events.Event
	running := []struct {
		name string
		env  env
		from string // the source the timeline header names
	}{
		{"PARLEY_NATS_URL", e.with("PARLEY_NATS_URL", s.natsURL), "NATS " + s.natsURL},
		{"the listener", e.with("PARLEY_NATS_LISTEN", s.natsAddr), "NATS " + s.natsURL},
		{"the listener without a data dir", e.with("PARLEY_NATS_LISTEN", s.natsAddr, "PARLEY_DATA_DIR", filepath.Join(t.TempDir(), "absent")), "NATS " + s.natsURL},
	}
	for _, tc := range running {
		t.Run("replay while running through "+tc.name, func(t *testing.T) {
			out := mustCLI(t, tc.env, "replay", id)
			assertInOrder(t, out, append([]string{"session " + id, "from " + tc.from + ")", "SEQ"}, append(wantKinds, `"`+reply+`"`)...)...)
			evs, js := replayJSON(t, tc.env, id)
			assertSubsequence(t, kinds(evs), wantKinds...)
			if evs[len(evs)-1].Kind != events.KindGenerationCompleted || evs[len(evs)-1].Seq != d.LastSeq {
				t.Errorf("last event %s seq %d, want generation.completed at last_seq %d", evs[len(evs)-1].Kind, evs[len(evs)-1].Seq, d.LastSeq)
			}
			var done events.GenerationCompleted
			if err := evs[len(evs)-1].Decode(&done); err != nil || done.Text != reply || done.Gen != 3 {
				t.Errorf("generation.completed %s, want gen 3 text %q", evs[len(evs)-1].Data, reply)
			}
			if before == "" {
				before, beforeEvents = js, evs
			} else if js != before {
				t.Errorf("replay --json differs between sources:\n%s\nvs\n%s", js, before)
			}
		})
	}
	if t.Failed() {
		t.FailNow()
	}

	t.Run("unknown session", func(t *testing.T) {
		const unknown = "NoSuchSessionAAAAAAAAA" // the form of an id, not in the log
		_, _, err := cli(t, e.with("PARLEY_NATS_URL", s.natsURL), "replay", unknown)
		if err == nil || !strings.Contains(err.Error(), unknown) || !strings.Contains(err.Error(), "not in the log") {
			t.Errorf("replay of an unknown session: %v", err)
		}
	})
	t.Run("not a session id", func(t *testing.T) {
		for _, id := range []string{"no-such-session", "*", ">"} {
			_, _, err := cli(t, e.with("PARLEY_NATS_URL", s.natsURL), "replay", "--", id)
			var ue *usageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), "not a session id") {
				t.Errorf("replay %q: %v, want a usage error", id, err)
			}
		}
	})

	// The server holds the data dir; without a way to its listener, replay
	// must refuse to open the dir (a second NATS server on one JetStream
	// store would corrupt it) and say why.
	held := []struct{ name, listen string }{
		{"listener port closed", closedAddr(t)},
		{"listener off", "off"},
	}
	for _, tc := range held {
		for _, cmd := range [][]string{{"replay", id}, {"sessions"}} {
			t.Run(cmd[0]+" of a held data dir, "+tc.name, func(t *testing.T) {
				out, _, err := cli(t, e.with("PARLEY_NATS_LISTEN", tc.listen), cmd...)
				if err == nil {
					t.Fatalf("succeeded while the server holds the data dir:\n%s", out)
				}
				msg := err.Error()
				if !errors.Is(err, errLocked) || !strings.Contains(msg, "in use") || !strings.Contains(msg, e["PARLEY_DATA_DIR"]) || !strings.Contains(msg, "PARLEY_NATS_URL") {
					t.Errorf("error %q: want the data dir in use, naming %s and PARLEY_NATS_URL", msg, e["PARLEY_DATA_DIR"])
				}
				if exitCode(err) != 1 {
					t.Errorf("exit code %d, want 1", exitCode(err))
				}
			})
		}
	}
	// Nothing was harmed: the server is ready and its log unchanged.
	if status, body := do(t, "GET", s.base+"/readyz", nil); status != http.StatusOK {
		t.Fatalf("readyz after the refused replays: %d %s", status, body)
	}
	if _, js := replayJSON(t, e.with("PARLEY_NATS_URL", s.natsURL), id); js != before {
		t.Fatalf("log changed after the refused replays:\n%s\nwas\n%s", js, before)
	}

	if err := s.stop(); err != nil {
		t.Fatalf("serve after its context ended: %v\nstderr:\n%s", err, s.stderr)
	}
	if !strings.Contains(s.stderr.String(), "stopped cleanly") {
		t.Errorf("stderr lacks \"stopped cleanly\":\n%s", s.stderr)
	}

	stopped := []struct{ name, listen string }{
		{"listener port now closed", s.natsAddr},
		{"listener off", "off"},
	}
	for _, tc := range stopped {
		t.Run("replay of the stopped server's data dir, "+tc.name, func(t *testing.T) {
			se := e.with("PARLEY_NATS_LISTEN", tc.listen)
			out := mustCLI(t, se, "replay", id)
			assertInOrder(t, out, append([]string{"session " + id, "from data directory " + e["PARLEY_DATA_DIR"] + ")"}, append(wantKinds, `"`+reply+`"`)...)...)
			if _, js := replayJSON(t, se, id); js != before {
				t.Errorf("replay from the data dir:\n%s\nwhile running:\n%s", js, before)
			}
			ids := strings.Split(strings.TrimSpace(mustCLI(t, se, "sessions")), "\n")
			if !slices.Equal(ids, []string{id}) {
				t.Errorf("sessions: %q, want [%s]", ids, id)
			}
		})
	}

	t.Run("restart keeps the session and its seq", func(t *testing.T) {
		up.Push(testkit.TextReply("second reply", 4))
		s2 := startServe(t, e)
		status, body := do(t, "GET", s2.base+"/v1/sessions", nil)
		var list struct{ Sessions []sessionDetail }
		if err := json.Unmarshal(body, &list); status != http.StatusOK || err != nil {
			t.Fatalf("list: %d %s", status, body)
		}
		if len(list.Sessions) != 1 || list.Sessions[0].ID != id || list.Sessions[0].LastSeq != d.LastSeq || list.Sessions[0].Generating {
			t.Fatalf("list after restart: %s; want only %s at last_seq %d, not generating", body, id, d.LastSeq)
		}
		d2 := detail(t, s2.base, id)
		if d2.LastSeq != d.LastSeq || !slices.Equal(d2.Messages, d.Messages) {
			t.Fatalf("detail after restart %+v, before %+v", d2, d)
		}
		// The seq goes on from where it was.
		status, body = do(t, "POST", s2.base+"/v1/sessions/"+id+"/messages", map[string]any{"content": "again"})
		var ack struct{ Seq uint64 }
		if err := json.Unmarshal(body, &ack); status != http.StatusAccepted || err != nil || ack.Seq != d.LastSeq+1 {
			t.Fatalf("send after restart: %d %s, want seq %d", status, body, d.LastSeq+1)
		}
		waitReply(t, s2.base, id, "completed")
		evs, _ := replayJSON(t, e.with("PARLEY_NATS_URL", s2.natsURL), id)
		if len(evs) <= len(beforeEvents) || !slices.Equal(kinds(evs[:len(beforeEvents)]), kinds(beforeEvents)) {
			t.Fatalf("log after restart %v, before %v", kinds(evs), kinds(beforeEvents))
		}
		if err := s2.stop(); err != nil {
			t.Fatalf("second serve: %v\nstderr:\n%s", err, s2.stderr)
		}
	})
}

// TestServeTwiceOnOneDataDir starts a second serve on a data dir a running
// one holds: it fails at once, naming the dir, and the first goes on.
func TestServeTwiceOnOneDataDir(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	e := baseEnv(t, up.URL())
	s := startServe(t, e)
	cases := []struct {
		name string
		env  env
	}{
		{"own free ports", e},
		{"the first one's ports", e.with("PARLEY_LISTEN", strings.TrimPrefix(s.base, "http://"), "PARLEY_NATS_LISTEN", s.natsAddr)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			out, errOut, err := cli(t, tc.env, "serve")
			took := time.Since(start)
			if err == nil {
				t.Fatalf("second serve ran (until its deadline):\n%s", out)
			}
			if !errors.Is(err, errLocked) || !strings.Contains(err.Error(), "in use") || !strings.Contains(err.Error(), e["PARLEY_DATA_DIR"]) {
				t.Errorf("second serve: %v; want the data dir %s in use\nstderr:\n%s", err, e["PARLEY_DATA_DIR"], errOut)
			}
			if took > 5*time.Second {
				t.Errorf("second serve took %v to fail", took)
			}
			if strings.Contains(out, "listening") {
				t.Errorf("second serve printed a start line: %s", out)
			}
		})
	}
	if status, body := do(t, "GET", s.base+"/readyz", nil); status != http.StatusOK {
		t.Errorf("first serve not ready after the second failed: %d %s", status, body)
	}
	id := chat(t, s.base, "still there?")
	waitReply(t, s.base, id, "completed")
	if err := s.stop(); err != nil {
		t.Fatalf("first serve: %v", err)
	}
}

// TestCommandLineErrors: bad configuration and bad command lines fail
// before anything starts, with an error that names what to change, and
// the exit code main would use (2 for a bad command line, 1 otherwise).
func TestCommandLineErrors(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		args      []string
		env       env // over a base with a data dir that must stay absent
		exit      int // exitCode(err); 0 means run succeeds
		invalid   bool
		errIs     error
		errHas    []string
		stdoutHas []string
		stderrHas []string
	}{
		{name: "auth none on all interfaces", args: []string{"serve"}, env: env{"PARLEY_AUTH": "none", "PARLEY_LISTEN": "0.0.0.0:9999"},
			exit: 1, invalid: true, errHas: []string{"PARLEY_AUTH", "PARLEY_LISTEN", "0.0.0.0:9999", "token"}},
		{name: "frame limit not a number", args: []string{"serve"}, env: env{"PARLEY_MAX_FRAME_BYTES": "abc"},
			exit: 1, invalid: true, errHas: []string{"PARLEY_MAX_FRAME_BYTES", `"abc"`, "whole number"}},
		{name: "frame limit too small by flag", args: []string{"serve", "-max-frame-bytes", "12"},
			exit: 1, invalid: true, errHas: []string{"PARLEY_MAX_FRAME_BYTES", "1024"}},
		{name: "NATS listener off loopback", args: []string{"serve"}, env: env{"PARLEY_NATS_LISTEN": "0.0.0.0:4222"},
			exit: 1, invalid: true, errHas: []string{"PARLEY_NATS_LISTEN", "loopback"}},
		{name: "two bad variables", args: []string{"serve"}, env: env{"PARLEY_SYNC_INTERVAL": "soon", "PARLEY_MAX_FRAME_BYTES": "abc"},
			exit: 1, invalid: true, errHas: []string{"PARLEY_SYNC_INTERVAL", "PARLEY_MAX_FRAME_BYTES"}},
		{name: "bad sim fault spec", args: []string{"serve"}, env: env{"PARLEY_PROVIDER": "sim", "PARLEY_SIM_FAULTS": "cut_every=2"},
			exit: 1, invalid: true, errHas: []string{"PARLEY_SIM_FAULTS", "cut_every=2", "needs cut_after"}},
		{name: "replay with a bad variable", args: []string{"replay", "x"}, env: env{"PARLEY_SYNC_INTERVAL": "soon"},
			exit: 1, invalid: true, errHas: []string{"PARLEY_SYNC_INTERVAL", "duration"}},
		{name: "no command", args: nil, exit: 2, errHas: []string{"no command"}, stderrHas: []string{"usage: parley"}},
		{name: "unknown command", args: []string{"frobnicate"}, exit: 2, errHas: []string{`"frobnicate"`}, stderrHas: []string{"usage: parley", "replay SESSION"}},
		{name: "replay without an id", args: []string{"replay"}, exit: 2, errHas: []string{"parley replay SESSION_ID"}},
		{name: "replay with only --json", args: []string{"replay", "--json"}, exit: 2, errHas: []string{"parley replay SESSION_ID"}},
		{name: "serve with an argument", args: []string{"serve", "now"}, exit: 2, errHas: []string{"no arguments", "now"}},
		{name: "sessions with an argument", args: []string{"sessions", "x"}, exit: 2, errHas: []string{"parley sessions"}},
		{name: "unknown flag", args: []string{"serve", "-no-such-flag"}, exit: 2, errHas: []string{"no-such-flag"}, stderrHas: []string{"-listen"}},
		{name: "bad flag value", args: []string{"replay", "x", "-sync-interval", "soon"}, exit: 2, errHas: []string{"sync-interval", "duration"}},
		{name: "serve -h", args: []string{"serve", "-h"}, exit: 2, errIs: flag.ErrHelp, stderrHas: []string{"-nats-listen", "PARLEY_NATS_LISTEN", "-max-frame-bytes"}},
		{name: "help", args: []string{"help"}, stdoutHas: []string{"usage: parley", "serve", "replay", "sessions"}},
		{name: "version", args: []string{"version"}, stdoutHas: []string{"parley "}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dataDir := filepath.Join(t.TempDir(), "data")
			e := env{
				"PARLEY_DATA_DIR":    dataDir,
				"PARLEY_LISTEN":      "127.0.0.1:0",
				"PARLEY_NATS_LISTEN": "127.0.0.1:0",
				"OLLAMA_HOST":        "http://" + closedAddr(t),
			}
			for k, v := range tc.env {
				e[k] = v
			}
			out, errOut, err := cli(t, e, tc.args...)
			switch {
			case tc.exit == 0 && err != nil:
				t.Fatalf("want success, got %v\nstderr:\n%s", err, errOut)
			case tc.exit != 0 && err == nil:
				t.Fatalf("want an error, got success\nstdout:\n%s", out)
			case err != nil:
				if got := exitCode(err); got != tc.exit {
					t.Errorf("exit code %d, want %d (error %v)", got, tc.exit, err)
				}
				if tc.invalid != errors.Is(err, config.ErrInvalid) {
					t.Errorf("errors.Is(err, config.ErrInvalid) = %v, want %v: %v", !tc.invalid, tc.invalid, err)
				}
				if tc.errIs != nil && !errors.Is(err, tc.errIs) {
					t.Errorf("error %v is not %v", err, tc.errIs)
				}
				for _, w := range tc.errHas {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error lacks %q:\n%v", w, err)
					}
				}
			}
			for _, w := range tc.stdoutHas {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tc.stderrHas {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr lacks %q:\n%s", w, errOut)
				}
			}
			if strings.Contains(out, "listening") {
				t.Errorf("started anyway: %s", out)
			}
			if _, err := os.Stat(dataDir); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the data dir was touched (stat: %v)", err)
			}
		})
	}
}

// TestServeModelServerDown starts with nothing on OLLAMA_HOST: serve
// starts anyway, says so on the start line and in a warning, and a send
// ends in generation.failed with upstream_unavailable.
func TestServeModelServerDown(t *testing.T) {
	t.Parallel()
	dead := "http://" + closedAddr(t)
	e := baseEnv(t, dead)
	s := startServe(t, e)
	if !strings.HasSuffix(s.startLine, "  [model server not answering]") || !strings.Contains(s.startLine, dead) {
		t.Errorf("start line %q lacks the model server %s and its note", s.startLine, dead)
	}
	logs := s.stderr.String()
	if !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "model server does not answer") || !strings.Contains(logs, "OLLAMA_HOST="+dead) {
		t.Errorf("no warning naming OLLAMA_HOST on stderr:\n%s", logs)
	}
	// It offers the simulated model but never switches to it by itself.
	if !strings.Contains(logs, "run with PARLEY_PROVIDER=sim") || strings.Contains(logs, "SIMULATED") {
		t.Errorf("the warning does not offer PARLEY_PROVIDER=sim, or the sim was started:\n%s", logs)
	}
	if status, body := do(t, "GET", s.base+"/readyz", nil); !strings.Contains(string(body), `"provider":"ollama"`) || !strings.Contains(string(body), `"simulated":false`) {
		t.Errorf("readyz %d %s: want provider ollama, simulated false", status, body)
	}
	if status, body := do(t, "GET", s.base+"/readyz", nil); status != http.StatusOK {
		t.Errorf("readyz without a model server: %d %s (history is still served)", status, body)
	}

	id := chat(t, s.base, "anyone there?")
	d := waitReply(t, s.base, id, "failed")
	if d.Generating {
		t.Errorf("still generating after the failure: %+v", d)
	}

	// A WebSocket client sees the failure with its code.
	c := testkit.DialWS(t, s.wsURL(), nil)
	c.Ack(c.Command(map[string]any{"type": "attach", "session": id}))
	frames := c.Until(func(f testkit.Frame) bool { return f.Type == "event" && testkit.IsTerminal(f.Kind) })
	last := frames[len(frames)-1]
	var failed events.GenerationFailed
	if err := json.Unmarshal(last.Data, &failed); err != nil || last.Kind != "generation.failed" || failed.Error.Code != "upstream_unavailable" || failed.Gen != 3 {
		t.Fatalf("terminal event %s, want generation.failed gen 3 with code upstream_unavailable", last.Raw)
	}
	c.Close()

	// And so does the log.
	evs, _ := replayJSON(t, e.with("PARLEY_NATS_URL", s.natsURL), id)
	if k := kinds(evs); !slices.Equal(k, []string{"session.created", "message.user", "generation.started", "generation.failed"}) {
		t.Errorf("log %v", k)
	}
	out := mustCLI(t, e.with("PARLEY_NATS_URL", s.natsURL), "replay", id)
	assertInOrder(t, out, "generation.failed", "upstream_unavailable")
	if err := s.stop(); err != nil {
		t.Fatalf("serve: %v", err)
	}
}

// TestServeInterruptMidGeneration presses Ctrl-C while a reply streams:
// serve returns, the generation is ended as generation.interrupted with
// the text so far (nothing left open), the upstream request is cancelled,
// and a restart finds nothing to recover.
func TestServeInterruptMidGeneration(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	up.Push(testkit.Script{testkit.StepContent("partial "), testkit.StepContent("reply"), testkit.StepBlock()})
	e := baseEnv(t, up.URL())
	s := startServe(t, e)
	id := chat(t, s.base, "go on forever")

	c := testkit.DialWS(t, s.wsURL(), nil)
	c.Ack(c.Command(map[string]any{"type": "attach", "session": id}))
	c.Until(func(f testkit.Frame) bool {
		return f.Type == "delta" && f.Gen == 3 && f.Offset+len(f.Text) == len("partial reply")
	})
	if d := detail(t, s.base, id); !d.Generating || d.Messages[len(d.Messages)-1].State != "generating" {
		t.Fatalf("not generating before Ctrl-C: %+v", d)
	}

	if err := s.stop(); err != nil {
		t.Fatalf("serve after Ctrl-C mid-generation: %v\nstderr:\n%s", err, s.stderr)
	}
	if !strings.Contains(s.stderr.String(), "stopped cleanly") {
		t.Errorf("stderr lacks \"stopped cleanly\":\n%s", s.stderr)
	}
	up.WaitCancelled(t, 1)
	if code := c.Closed(); code != websocket.StatusGoingAway {
		t.Errorf("WebSocket closed with %v, want 1001 going away", code)
	}

	check := func(t *testing.T, evs []events.Event) {
		t.Helper()
		ks := kinds(evs)
		assertSubsequence(t, ks, "session.created", "message.user", "generation.started", "generation.interrupted")
		started, ended := 0, 0
		for _, ev := range evs {
			if ev.Kind == events.KindGenerationStarted {
				started++
			}
			if ev.Kind.Terminal() {
				ended++
			}
		}
		if started != 1 || ended != 1 || ks[len(ks)-1] != "generation.interrupted" {
			t.Fatalf("log %v: want one generation, ended once, by generation.interrupted", ks)
		}
		var d events.GenerationInterrupted
		if err := evs[len(evs)-1].Decode(&d); err != nil || d.Gen != 3 || d.Text != "partial reply" {
			t.Fatalf("generation.interrupted %s, want gen 3 text %q", evs[len(evs)-1].Data, "partial reply")
		}
	}
	evs, before := replayJSON(t, e.with("PARLEY_NATS_LISTEN", "off"), id)
	check(t, evs)
	assertInOrder(t, mustCLI(t, e.with("PARLEY_NATS_LISTEN", "off"), "replay", id), "generation.started", "generation.interrupted", `"partial reply"`)

	// A restart has nothing left to recover: the log stays as it was.
	s2 := startServe(t, e)
	d := detail(t, s2.base, id)
	if d.Generating || d.Messages[len(d.Messages)-1].State != "interrupted" || d.Messages[len(d.Messages)-1].Content != "partial reply" {
		t.Errorf("after restart: %+v", d)
	}
	if _, after := replayJSON(t, e.with("PARLEY_NATS_URL", s2.natsURL), id); after != before {
		t.Errorf("restart changed the log:\n%s\nwas\n%s", after, before)
	}
	if err := s2.stop(); err != nil {
		t.Fatalf("second serve: %v", err)
	}
}
