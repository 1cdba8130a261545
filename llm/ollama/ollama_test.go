package ollama_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/llm"
	"github.com/parleyhq/parley/llm/ollama"
)

func provider(t testing.TB, url string, cfg ollama.Config) *ollama.Provider {
	t.Helper()
	cfg.BaseURL = url
	cfg.Logger = testkit.Logger(t)
	p, err := ollama.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

var req = llm.Request{Model: "tiny", Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}}

// stream runs one request and collects what the callback saw.
func stream(t *testing.T, p *ollama.Provider, ctx context.Context) (text, thinking string, res llm.Result, err error) {
	t.Helper()
	var tb, th strings.Builder
	res, err = p.Stream(ctx, req, func(d llm.Delta) {
		tb.WriteString(d.Text)
		th.WriteString(d.Thinking)
	})
	return tb.String(), th.String(), res, err
}

func TestStream(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		script       testkit.Script
		cfg          ollama.Config
		wantText     string
		wantThinking string
		wantCode     string // "" = success
		wantCause    error
	}{
		{"complete", testkit.Script{testkit.StepContent("Hel"), testkit.StepContent("lo"), testkit.StepDoneWith(testkit.DoneStats{Reason: "stop", PromptEvalCount: 7, EvalCount: 2})}, ollama.Config{}, "Hello", "", "", nil},
		{"thinking apart", testkit.Script{testkit.StepThinking("hmm"), testkit.StepContent("yes"), testkit.StepDone()}, ollama.Config{}, "yes", "hmm", "", nil},
		{"error before output", testkit.Script{testkit.StepError("model requires more system memory")}, ollama.Config{}, "", "", llm.CodeUpstreamError, nil},
		{"503 before output", testkit.Script{testkit.StepErrorStatus(503, "busy")}, ollama.Config{}, "", "", llm.CodeUpstreamUnavailable, nil},
		{"error mid-stream", testkit.Script{testkit.StepContent("ab"), testkit.StepError("boom")}, ollama.Config{}, "ab", "", llm.CodeUpstreamError, nil},
		{"cut", testkit.Script{testkit.StepContent("ab"), testkit.StepCut()}, ollama.Config{}, "ab", "", llm.CodeUpstreamError, llm.ErrIncomplete},
		{"end without done", testkit.Script{testkit.StepContent("ab"), testkit.StepEnd()}, ollama.Config{}, "ab", "", llm.CodeUpstreamError, llm.ErrIncomplete},
		{"malformed record", testkit.Script{testkit.StepRaw([]byte("{not json\n"))}, ollama.Config{}, "", "", llm.CodeUpstreamError, nil},
		{"first token timeout", testkit.Script{testkit.StepDelay(time.Minute), testkit.StepDone()}, ollama.Config{FirstTokenTimeout: 200 * time.Millisecond}, "", "", llm.CodeUpstreamError, ollama.ErrFirstTokenTimeout},
		{"idle timeout", testkit.Script{testkit.StepContent("a"), testkit.StepDelay(time.Minute), testkit.StepDone()}, ollama.Config{IdleTimeout: 200 * time.Millisecond}, "a", "", llm.CodeUpstreamError, ollama.ErrIdleTimeout},
		{"split records", testkit.Script{testkit.StepContent("a€😀b").SplitEvery(3), testkit.StepDone()}, ollama.Config{}, "a€😀b", "", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			up := testkit.NewScriptedOllama(t, testkit.ScriptedConfig{})
			up.Push(tt.script)
			p := provider(t, up.URL(), tt.cfg)
			text, thinking, res, err := stream(t, p, context.Background())
			if text != tt.wantText || thinking != tt.wantThinking {
				t.Errorf("text %q thinking %q", text, thinking)
			}
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("err %v", err)
				}
				if res.DoneReason == "" || res.Usage.CompletionTokens == 0 {
					t.Errorf("result %+v", res)
				}
				return
			}
			if code := llm.CodeOf(err); code != tt.wantCode {
				t.Fatalf("code %q (%v), want %s", code, err, tt.wantCode)
			}
			if tt.wantCause != nil && !errors.Is(err, tt.wantCause) {
				t.Errorf("err %v, want cause %v", err, tt.wantCause)
			}
			if tt.wantCause == ollama.ErrFirstTokenTimeout || tt.wantCause == ollama.ErrIdleTimeout {
				up.WaitCancelled(t, 1)
			}
		})
	}
}

// TestStreamUsage reports the done record's counts.
func TestStreamUsage(t *testing.T) {
	t.Parallel()
	up := testkit.NewScriptedOllama(t, testkit.ScriptedConfig{})
	up.Push(testkit.Script{testkit.StepContent("x"), testkit.StepDoneWith(testkit.DoneStats{Reason: "length", PromptEvalCount: 11, EvalCount: 3})})
	_, _, res, err := stream(t, provider(t, up.URL(), ollama.Config{}), context.Background())
	if err != nil || res.DoneReason != "length" || res.Usage.PromptTokens != 11 || res.Usage.CompletionTokens != 3 {
		t.Fatalf("%+v %v", res, err)
	}
}

// TestStreamCancel: cancelling the context cancels the HTTP request and
// returns the context's error, not an upstream error.
func TestStreamCancel(t *testing.T) {
	t.Parallel()
	up := testkit.NewScriptedOllama(t, testkit.ScriptedConfig{})
	up.Push(testkit.Script{testkit.StepContent("a"), testkit.StepBlock()})
	p := provider(t, up.URL(), ollama.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan struct{}, 1)
	errc := make(chan error, 1)
	go func() {
		_, err := p.Stream(ctx, req, func(llm.Delta) { got <- struct{}{} })
		errc <- err
	}()
	<-got
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) || llm.CodeOf(err) != "" {
		t.Fatalf("err %v", err)
	}
	up.WaitCancelled(t, 1)
}

// TestUnavailable: nothing listens there.
func TestUnavailable(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close()
	p := provider(t, url, ollama.Config{})
	if _, _, _, err := stream(t, p, context.Background()); llm.CodeOf(err) != llm.CodeUpstreamUnavailable {
		t.Errorf("stream: %v", err)
	}
	if err := p.Check(context.Background()); llm.CodeOf(err) != llm.CodeUpstreamUnavailable {
		t.Errorf("check: %v", err)
	}
}

func TestCheckAndModels(t *testing.T) {
	t.Parallel()
	up := testkit.NewScriptedOllama(t, testkit.ScriptedConfig{Models: []string{"tiny", "llama3.2:3b"}})
	p := provider(t, up.URL(), ollama.Config{})
	if err := p.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	models, err := p.Models(context.Background())
	if err != nil || len(models) != 2 {
		t.Fatalf("%v %v", models, err)
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cfg  ollama.Config
		ok   bool
		base string
	}{
		{ollama.Config{}, true, "http://127.0.0.1:11434"},
		{ollama.Config{BaseURL: "box:11434"}, true, "http://box:11434"},
		{ollama.Config{BaseURL: "ftp://box"}, false, ""},
		{ollama.Config{IdleTimeout: -1}, false, ""},
		{ollama.Config{FirstTokenTimeout: time.Hour, TotalTimeout: time.Minute}, false, ""},
	}
	for _, tt := range tests {
		p, err := ollama.New(tt.cfg)
		if (err == nil) != tt.ok {
			t.Errorf("%+v: %v", tt.cfg, err)
			continue
		}
		if err == nil && p.BaseURL() != tt.base {
			t.Errorf("%+v: base %s", tt.cfg, p.BaseURL())
		}
	}
}
