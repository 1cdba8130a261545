package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/parleyhq/parley/events"
	"github.com/parleyhq/parley/internal/testkit"
)

// simTurn is one chat turn over the WebSocket as a client sees it.
type simTurn struct {
	started  events.GenerationStarted
	deltas   string // the reply assembled from delta frames
	terminal testkit.Frame
}

// simChat sends content to session over c and waits for the end of the
// generation it starts.
func simChat(t *testing.T, c *testkit.WSClient, session, content string) simTurn {
	t.Helper()
	ack := c.Ack(c.Command(map[string]any{"type": "send", "session": session, "content": content}))
	gen := ack.Seq + 1 // generation.started follows message.user
	frames := c.Terminal(session, gen)
	var turn simTurn
	found := false
	for _, f := range frames {
		if f.Type == "event" && f.Kind == "generation.started" && f.Seq == gen {
			if err := json.Unmarshal(f.Data, &turn.started); err != nil {
				t.Fatalf("generation.started %s: %v", f.Raw, err)
			}
			found = true
		}
	}
	if !found {
		t.Fatalf("no generation.started at seq %d among %d frames", gen, len(frames))
	}
	turn.deltas = testkit.Assemble(t, frames, gen)
	turn.terminal = frames[len(frames)-1]
	return turn
}

// TestServeSim runs serve with PARLEY_PROVIDER=sim and nothing on
// OLLAMA_HOST: it starts without complaint about Ollama, says at start and
// in /readyz that replies are simulated, records provider "sim" in every
// generation.started, answers the same prompt with the same reply,
// refuses a model it does not have as a real server does, and injects the
// faults PARLEY_SIM_FAULTS asks for.
func TestServeSim(t *testing.T) {
	t.Parallel()
	e := baseEnv(t, "http://"+closedAddr(t)).with(
		"PARLEY_PROVIDER", "sim",
		"PARLEY_SIM_TTFT", "20ms",
		"PARLEY_SIM_TOKENS_PER_SECOND", "1000",
		"PARLEY_SIM_REPLY_TOKENS", "40",
		"PARLEY_SIM_FAULTS", "error_after=5,error_every=3",
	)
	s := startServe(t, e)
	if want := "sim [simulated replies] (model tiny)"; s.upstream != want {
		t.Errorf("start line model server %q, want %q", s.upstream, want)
	}
	logs := s.stderr.String()
	if !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "PARLEY_PROVIDER=sim: replies are SIMULATED") ||
		!strings.Contains(logs, `PARLEY_SIM_FAULTS="error_after=5,error_every=3"`) {
		t.Errorf("no warning that replies are simulated, with the settings, on stderr:\n%s", logs)
	}
	if strings.Contains(logs, "model server does not answer") {
		t.Errorf("serve checked Ollama although the provider is sim:\n%s", logs)
	}

	status, body := do(t, "GET", s.base+"/readyz", nil)
	var ready struct {
		Status    string   `json:"status"`
		Provider  string   `json:"provider"`
		Simulated *bool    `json:"simulated"`
		Model     string   `json:"model"`
		Models    []string `json:"models"`
		Sim       struct {
			ReplyTokens int    `json:"reply_tokens"`
			Faults      string `json:"faults"`
		} `json:"sim"`
	}
	if err := json.Unmarshal(body, &ready); status != http.StatusOK || err != nil || ready.Status != "ready" ||
		ready.Provider != "sim" || ready.Simulated == nil || !*ready.Simulated || ready.Model != "tiny" ||
		strings.Join(ready.Models, ",") != "tiny,sim" || ready.Sim.ReplyTokens != 40 || ready.Sim.Faults != "error_after=5,error_every=3" {
		t.Errorf("readyz: %d %s; want ready, provider sim, simulated true, models tiny,sim and the sim settings", status, body)
	}

	c := testkit.DialWS(t, s.wsURL(), nil)
	newSession := func(fields map[string]any) string {
		t.Helper()
		fields["type"] = "create"
		id := c.Ack(c.Command(fields)).Session
		if id == "" {
			t.Fatal("create: ack without a session")
		}
		return id
	}
	a, b := newSession(map[string]any{}), newSession(map[string]any{})

	// Request 1: a whole simulated reply, labelled as such.
	turnA := simChat(t, c, a, "hello, simulator")
	if turnA.started.Provider != "sim" || turnA.started.Model != "tiny" {
		t.Errorf("generation.started %+v, want provider sim, model tiny", turnA.started)
	}
	var done events.GenerationCompleted
	if err := json.Unmarshal(turnA.terminal.Data, &done); err != nil || turnA.terminal.Kind != "generation.completed" {
		t.Fatalf("terminal event %s, want generation.completed", turnA.terminal.Raw)
	}
	if done.Text == "" || done.Text != turnA.deltas || !utf8.ValidString(done.Text) {
		t.Errorf("completed text %q, deltas %q: want the same valid, non-empty text", done.Text, turnA.deltas)
	}
	if done.DoneReason != "stop" || done.Usage.CompletionTokens != 40 || done.Usage.PromptTokens == 0 {
		t.Errorf("completed %+v, want done reason stop, 40 completion tokens and a prompt estimate", done)
	}

	// Request 2: the same prompt in another session gets the same reply.
	turnB := simChat(t, c, b, "hello, simulator")
	if turnB.terminal.Kind != "generation.completed" || turnB.terminal.DataText() != done.Text {
		t.Errorf("the same prompt gave %s %q, want the same reply %q", turnB.terminal.Kind, turnB.terminal.DataText(), done.Text)
	}

	// A model the simulator does not have is refused at create, before
	// anything is appended (and is not counted for faults).
	r, _ := c.Reply(c.Command(map[string]any{"type": "create", "model": "gpt-4o"}))
	if r.Type != "error" || r.Code != "bad_request" || !strings.Contains(r.Message, `unknown model "gpt-4o"`) {
		t.Errorf("create with an unknown model: %s, want error bad_request unknown model", r.Raw)
	}

	// Request 3 meets the injected error after 5 tokens, whose text is kept.
	turn3 := simChat(t, c, a, "and again")
	var failed events.GenerationFailed
	if err := json.Unmarshal(turn3.terminal.Data, &failed); err != nil || turn3.terminal.Kind != "generation.failed" ||
		failed.Error.Code != "upstream_error" || !strings.Contains(failed.Error.Message, "injected") {
		t.Fatalf("request 3: %s, want generation.failed upstream_error (injected)", turn3.terminal.Raw)
	}
	if failed.Text == "" || failed.Text != turn3.deltas || !utf8.ValidString(failed.Text) {
		t.Errorf("failed text %q, deltas %q: want the 5 tokens sent before the error", failed.Text, turn3.deltas)
	}
	c.Close()
	if err := s.stop(); err != nil {
		t.Fatalf("serve: %v\nstderr:\n%s", err, s.stderr)
	}
}
