package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/events"
	"github.com/parleyhq/parley/internal/testkit"
)

// TestServeOpenAIProvider runs serve with PARLEY_PROVIDER=openai against a
// scripted OpenAI-compatible server that wants a key: the start line names
// the provider and its base URL, the key (from OPENAI_API_KEY) goes out as
// a bearer token and never into the output, one chat turn completes, and
// the log records provider "openai".
func TestServeOpenAIProvider(t *testing.T) {
	t.Parallel()
	const key = "sk-test-serve-0123456789"
	up := testkit.NewScriptedOpenAI(t, testkit.ScriptedOpenAIConfig{Models: []string{"tiny"}, APIKey: key})
	const reply = "Hello from the OpenAI side."
	up.Push(testkit.TokenReply(time.Millisecond, "Hello", " from the", " OpenAI side."))
	e := baseEnv(t, "http://"+closedAddr(t)).with(
		"PARLEY_PROVIDER", "openai",
		"PARLEY_OPENAI_BASE_URL", up.URL(),
		"OPENAI_API_KEY", key,
	)
	s := startServe(t, e)
	if want := "openai " + up.URL() + " (model tiny)"; s.upstream != want {
		t.Errorf("start line model server %q, want %q", s.upstream, want)
	}

	id := chat(t, s.base, "hi")
	d := waitReply(t, s.base, id, "completed")
	if got := d.Messages[len(d.Messages)-1].Content; got != reply {
		t.Fatalf("reply %q, want %q", got, reply)
	}
	reqs := up.WaitRequests(t, 1)
	if auth := reqs[0].Header.Get("Authorization"); auth != "Bearer "+key {
		t.Errorf("Authorization %q", auth)
	}
	if reqs[0].Chat.Model != "tiny" || reqs[0].Chat.Messages[len(reqs[0].Chat.Messages)-1].Content != "hi" {
		t.Errorf("request %s", reqs[0].Body)
	}

	evs, _ := replayJSON(t, e.with("PARLEY_NATS_URL", s.natsURL), id)
	var started events.GenerationStarted
	for _, ev := range evs {
		if ev.Kind == events.KindGenerationStarted {
			if err := ev.Decode(&started); err != nil {
				t.Fatal(err)
			}
		}
	}
	if started.Provider != "openai" || started.Model != "tiny" {
		t.Errorf("generation.started %+v, want provider openai", started)
	}
	if err := s.stop(); err != nil {
		t.Fatalf("serve: %v", err)
	}
	for _, out := range []string{s.stdout.String(), s.stderr.String()} {
		if strings.Contains(out, key) {
			t.Errorf("output shows the API key:\n%s", out)
		}
	}
}

// TestServeOpenAIWrongKey: the server answers the model check with 401.
// serve starts anyway, says so on the start line and in a warning that
// names the variables to check, and a send fails with upstream_error.
func TestServeOpenAIWrongKey(t *testing.T) {
	t.Parallel()
	up := testkit.NewScriptedOpenAI(t, testkit.ScriptedOpenAIConfig{Flavor: testkit.FlavorOpenAI, Models: []string{"tiny"}, APIKey: "sk-right-0123456789"})
	e := baseEnv(t, "http://"+closedAddr(t)).with(
		"PARLEY_PROVIDER", "openai",
		"PARLEY_OPENAI_BASE_URL", up.URL(),
		"PARLEY_OPENAI_API_KEY", "sk-wrong-0123456789",
	)
	s := startServe(t, e)
	if !strings.HasSuffix(s.startLine, "  [model server refused: 401 Unauthorized]") {
		t.Errorf("start line %q lacks the refusal", s.startLine)
	}
	logs := s.stderr.String()
	for _, want := range []string{"level=WARN", "refused the check", "PARLEY_OPENAI_API_KEY", "PARLEY_OPENAI_BASE_URL=" + up.URL()} {
		if !strings.Contains(logs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, logs)
		}
	}

	id := chat(t, s.base, "anyone there?")
	waitReply(t, s.base, id, "failed")
	evs, _ := replayJSON(t, e.with("PARLEY_NATS_URL", s.natsURL), id)
	last := evs[len(evs)-1]
	var failed events.GenerationFailed
	if err := json.Unmarshal(last.Data, &failed); err != nil || last.Kind != events.KindGenerationFailed ||
		failed.Error.Code != "upstream_error" || !strings.Contains(failed.Error.Message, "Incorrect API key provided") {
		t.Errorf("last event %s %s, want generation.failed with upstream_error", last.Kind, last.Data)
	}
	if err := s.stop(); err != nil {
		t.Fatalf("serve: %v", err)
	}
	if out := s.stdout.String() + s.stderr.String(); strings.Contains(out, "sk-wrong-0123456789") {
		t.Errorf("output shows the API key")
	}
}
