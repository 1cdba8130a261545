package openai_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/llm"
	"github.com/parleyhq/parley/llm/openai"
)

func provider(t testing.TB, url string, cfg openai.Config) *openai.Provider {
	t.Helper()
	cfg.BaseURL = url
	if cfg.Logger == nil {
		cfg.Logger = testkit.Logger(t)
	}
	p, err := openai.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

var req = llm.Request{Model: "tiny", Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}}

// streamed is what one Stream call produced.
type streamed struct {
	deltas         []llm.Delta
	text, thinking string
	res            llm.Result
	err            error
}

func stream(t testing.TB, p *openai.Provider, ctx context.Context, r llm.Request) streamed {
	t.Helper()
	var s streamed
	var tb, th strings.Builder
	s.res, s.err = p.Stream(ctx, r, func(d llm.Delta) {
		if d.Text == "" && d.Thinking == "" {
			t.Errorf("empty delta delivered")
		}
		s.deltas = append(s.deltas, d)
		tb.WriteString(d.Text)
		th.WriteString(d.Thinking)
	})
	s.text, s.thinking = tb.String(), th.String()
	return s
}

const (
	ollamaFlavor = testkit.FlavorOllama
	openaiFlavor = testkit.FlavorOpenAI
)

func TestStream(t *testing.T) {
	t.Parallel()
	type want struct {
		text, thinking string
		reason         string // success: DoneReason
		usage          llm.Usage
		code           string // "" = success
		cause          error  // errors.Is
		retryable      bool
		retryAfter     time.Duration
		msg            string // substring of the llm.Error message
		cancelled      bool   // the upstream saw the request cancelled
	}
	stop := testkit.DoneStats{Reason: "stop", PromptEvalCount: 7, EvalCount: 2}
	tests := []struct {
		name   string
		flavor testkit.OpenAIFlavor
		script testkit.Script
		cfg    openai.Config
		want   want
	}{
		// Completed replies.
		{"complete ollama", ollamaFlavor, testkit.Script{testkit.StepContent("Hel"), testkit.StepContent("lo"), testkit.StepDoneWith(stop)}, openai.Config{},
			want{text: "Hello", reason: "stop", usage: llm.Usage{PromptTokens: 7, CompletionTokens: 2}}},
		{"complete openai", openaiFlavor, testkit.Script{testkit.StepContent("Hel"), testkit.StepContent("lo"), testkit.StepDoneWith(stop)}, openai.Config{},
			want{text: "Hello", reason: "stop", usage: llm.Usage{PromptTokens: 7, CompletionTokens: 2}}},
		{"length", ollamaFlavor, testkit.Script{testkit.StepContent("x"), testkit.StepDoneWith(testkit.DoneStats{Reason: "length", PromptEvalCount: 11, EvalCount: 3})}, openai.Config{},
			want{text: "x", reason: "length", usage: llm.Usage{PromptTokens: 11, CompletionTokens: 3}}},
		{"reasoning apart (ollama)", ollamaFlavor, testkit.Script{testkit.StepThinking("hmm"), testkit.StepThinking(" ok"), testkit.StepContent("yes"), testkit.StepDoneWith(stop)}, openai.Config{},
			want{text: "yes", thinking: "hmm ok", reason: "stop", usage: llm.Usage{PromptTokens: 7, CompletionTokens: 2}}},
		{"reasoning_content apart (openai)", openaiFlavor, testkit.Script{testkit.StepThinking("hmm"), testkit.StepContent("yes"), testkit.StepDoneWith(stop)}, openai.Config{},
			want{text: "yes", thinking: "hmm", reason: "stop", usage: llm.Usage{PromptTokens: 7, CompletionTokens: 2}}},
		{"finish_reason without [DONE]", ollamaFlavor, testkit.Script{testkit.StepContent("ab"), testkit.StepFinish("stop"), testkit.StepEnd()}, openai.Config{},
			want{text: "ab", reason: "stop"}},
		{"finish_reason then cut before usage", ollamaFlavor, testkit.Script{testkit.StepContent("ab"), testkit.StepFinish("stop"), testkit.StepCut()}, openai.Config{},
			want{text: "ab", reason: "stop"}},
		{"[DONE] without finish_reason", ollamaFlavor, testkit.Script{testkit.StepContent("ab"), testkit.StepUsage(stop), testkit.StepDoneMarker(), testkit.StepEnd()}, openai.Config{},
			want{text: "ab", usage: llm.Usage{PromptTokens: 7, CompletionTokens: 2}}},
		{"comments and empty events ignored", ollamaFlavor, testkit.Script{testkit.StepComment("OPENROUTER PROCESSING"), testkit.StepRaw([]byte("data: \n\n")), testkit.StepContent("a"), testkit.StepComment("ping"), testkit.StepDoneWith(stop)}, openai.Config{},
			want{text: "a", reason: "stop", usage: llm.Usage{PromptTokens: 7, CompletionTokens: 2}}},
		{"event split across reads", ollamaFlavor, testkit.Script{testkit.StepContent("a€😀b").SplitEvery(3).Pause(0), testkit.StepDoneWith(stop)}, openai.Config{},
			want{text: "a€😀b", reason: "stop", usage: llm.Usage{PromptTokens: 7, CompletionTokens: 2}}},
		{"slow first token within the limit", ollamaFlavor, testkit.Script{testkit.StepDelay(300 * time.Millisecond), testkit.StepContent("a"), testkit.StepDoneWith(stop)}, openai.Config{FirstTokenTimeout: 5 * time.Second, IdleTimeout: 100 * time.Millisecond},
			want{text: "a", reason: "stop", usage: llm.Usage{PromptTokens: 7, CompletionTokens: 2}}},
		{"pause between tokens within the limit", ollamaFlavor, testkit.TokenReply(150*time.Millisecond, "a", "b", "c"), openai.Config{IdleTimeout: 2 * time.Second},
			want{text: "abc", reason: "stop", usage: llm.Usage{PromptTokens: 2, CompletionTokens: 3}}},

		// Failures before output.
		{"429 Retry-After seconds", ollamaFlavor, testkit.Script{testkit.StepHeader("Retry-After", "7"), testkit.StepErrorStatus(429, "server busy, please try again.  maximum pending requests exceeded")}, openai.Config{},
			want{code: llm.CodeUpstreamUnavailable, retryable: true, retryAfter: 7 * time.Second, msg: "429 Too Many Requests: server busy"}},
		{"429 Retry-After date", openaiFlavor, testkit.Script{testkit.StepHeader("Retry-After", time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)), testkit.StepErrorStatus(429, "Rate limit reached")}, openai.Config{},
			want{code: llm.CodeUpstreamUnavailable, retryable: true, retryAfter: time.Hour, msg: "Rate limit reached"}},
		{"429 retry-after-ms", openaiFlavor, testkit.Script{testkit.StepHeader("Retry-After-Ms", "1500"), testkit.StepHeader("Retry-After", "2"), testkit.StepErrorStatus(429, "Rate limit reached")}, openai.Config{},
			want{code: llm.CodeUpstreamUnavailable, retryable: true, retryAfter: 1500 * time.Millisecond}},
		{"429 insufficient_quota", openaiFlavor, testkit.Script{testkit.StepResponse(429, "application/json", `{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","param":null,"code":"insufficient_quota"}}`)}, openai.Config{},
			want{code: llm.CodeUpstreamError, msg: "You exceeded your current quota"}},
		{"500 before output", ollamaFlavor, testkit.Script{testkit.StepDelay(10 * time.Millisecond), testkit.StepError("model runner has unexpectedly stopped")}, openai.Config{},
			want{code: llm.CodeUpstreamError, retryable: true, msg: "500 Internal Server Error: model runner has unexpectedly stopped"}},
		{"500 with x-should-retry false", openaiFlavor, testkit.Script{testkit.StepHeader("X-Should-Retry", "false"), testkit.StepError("no")}, openai.Config{},
			want{code: llm.CodeUpstreamError}},
		{"503", ollamaFlavor, testkit.Script{testkit.StepHeader("Retry-After", "3"), testkit.StepErrorStatus(503, "busy")}, openai.Config{},
			want{code: llm.CodeUpstreamUnavailable, retryable: true, retryAfter: 3 * time.Second}},
		{"502 proxy page", ollamaFlavor, testkit.Script{testkit.StepResponse(502, "text/html", "<html>bad gateway</html>")}, openai.Config{},
			want{code: llm.CodeUpstreamUnavailable, retryable: true, msg: "502 Bad Gateway"}},
		{"400", openaiFlavor, testkit.Script{testkit.StepErrorStatus(400, "Invalid value for 'max_tokens'")}, openai.Config{},
			want{code: llm.CodeUpstreamError, msg: "400 Bad Request: Invalid value for 'max_tokens'"}},
		{"403 plain text", ollamaFlavor, testkit.Script{testkit.StepResponse(403, "text/plain; charset=utf-8", "forbidden by policy\n")}, openai.Config{},
			want{code: llm.CodeUpstreamError, msg: "403 Forbidden: forbidden by policy"}},
		{"200 with a JSON error", ollamaFlavor, testkit.Script{testkit.StepResponse(200, "application/json", `{"error":{"message":"stream not supported"}}`)}, openai.Config{},
			want{code: llm.CodeUpstreamError, msg: "stream not supported"}},

		// Failures after output: never retryable.
		{"error object mid-stream (openai)", openaiFlavor, testkit.Script{testkit.StepContent("ab"), testkit.StepError("The server had an error while processing your request.")}, openai.Config{},
			want{text: "ab", code: llm.CodeUpstreamError, msg: "The server had an error while processing your request."}},
		{"error mid-stream (ollama: empty chunk, no [DONE])", ollamaFlavor, testkit.Script{testkit.StepContent("ab"), testkit.StepError("model crashed")}, openai.Config{},
			want{text: "ab", code: llm.CodeUpstreamError, cause: llm.ErrIncomplete}},
		{"vllm error object", ollamaFlavor, testkit.Script{testkit.StepContent("ab"), testkit.StepRaw([]byte(`data: {"object":"error","message":"context too long","type":"BadRequestError","param":null,"code":400}` + "\n\n"))}, openai.Config{},
			want{text: "ab", code: llm.CodeUpstreamError, msg: "context too long"}},
		{"finish_reason error", ollamaFlavor, testkit.Script{testkit.StepContent("ab"), testkit.StepFinish("error"), testkit.StepEnd()}, openai.Config{},
			want{text: "ab", code: llm.CodeUpstreamError}},
		{"error object before output", openaiFlavor, testkit.Script{testkit.StepRaw([]byte(`data: {"error":{"message":"overloaded","type":"server_error","param":null,"code":null}}` + "\n\n"))}, openai.Config{},
			want{code: llm.CodeUpstreamError, msg: "overloaded"}},
		{"cut", ollamaFlavor, testkit.Script{testkit.StepContent("ab"), testkit.StepCut()}, openai.Config{},
			want{text: "ab", code: llm.CodeUpstreamError, cause: llm.ErrIncomplete}},
		{"cut before output", ollamaFlavor, testkit.Script{testkit.StepComment("x"), testkit.StepCut()}, openai.Config{},
			want{code: llm.CodeUpstreamError, cause: llm.ErrIncomplete}},
		{"end without [DONE] or finish_reason", ollamaFlavor, testkit.Script{testkit.StepContent("ab"), testkit.StepEnd()}, openai.Config{},
			want{text: "ab", code: llm.CodeUpstreamError, cause: llm.ErrIncomplete, msg: "without finish_reason or [DONE]"}},
		{"usage but no [DONE] or finish_reason", ollamaFlavor, testkit.Script{testkit.StepContent("ab"), testkit.StepUsage(stop), testkit.StepEnd()}, openai.Config{},
			want{text: "ab", code: llm.CodeUpstreamError, cause: llm.ErrIncomplete}},
		{"malformed chunk", ollamaFlavor, testkit.Script{testkit.StepContent("a"), testkit.StepRaw([]byte("data: {not json\n\n")), testkit.StepDone()}, openai.Config{},
			want{text: "a", code: llm.CodeUpstreamError, msg: "malformed chunk"}},

		// Our timers.
		{"first token timeout", ollamaFlavor, testkit.Script{testkit.StepDelay(time.Minute), testkit.StepDone()}, openai.Config{FirstTokenTimeout: 200 * time.Millisecond},
			want{code: llm.CodeUpstreamError, cause: openai.ErrFirstTokenTimeout, cancelled: true}},
		{"first token timeout with comments", ollamaFlavor, testkit.Script{testkit.StepComment("PROCESSING"), testkit.StepDelay(time.Minute), testkit.StepDone()}, openai.Config{FirstTokenTimeout: 200 * time.Millisecond},
			want{code: llm.CodeUpstreamError, cause: openai.ErrFirstTokenTimeout, cancelled: true}},
		{"idle timeout", ollamaFlavor, testkit.Script{testkit.StepContent("a"), testkit.StepDelay(time.Minute), testkit.StepDone()}, openai.Config{IdleTimeout: 200 * time.Millisecond},
			want{text: "a", code: llm.CodeUpstreamError, cause: openai.ErrIdleTimeout, cancelled: true}},
		{"comments do not reset idle", ollamaFlavor, testkit.Script{testkit.StepContent("a"),
			testkit.StepDelay(120 * time.Millisecond), testkit.StepComment("ping"), testkit.StepDelay(120 * time.Millisecond), testkit.StepComment("ping"),
			testkit.StepDelay(time.Minute), testkit.StepDone()}, openai.Config{IdleTimeout: 200 * time.Millisecond},
			want{text: "a", code: llm.CodeUpstreamError, cause: openai.ErrIdleTimeout, cancelled: true}},
		{"total timeout", ollamaFlavor, testkit.TokenReply(50*time.Millisecond, strings.Split(strings.Repeat("t", 100), "")...), openai.Config{FirstTokenTimeout: 100 * time.Millisecond, TotalTimeout: 400 * time.Millisecond},
			want{code: llm.CodeUpstreamError, cause: openai.ErrTotalTimeout, cancelled: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			up := testkit.NewScriptedOpenAI(t, testkit.ScriptedOpenAIConfig{Flavor: tt.flavor})
			up.Push(tt.script)
			p := provider(t, up.URL(), tt.cfg)
			got := stream(t, p, context.Background(), req)
			w := tt.want
			if w.cause == openai.ErrTotalTimeout {
				// How much text arrives before the cap varies; some does.
				if got.text == "" {
					t.Errorf("no text before the total timeout")
				}
				w.text = got.text
			}
			if got.text != w.text || got.thinking != w.thinking {
				t.Errorf("text %q thinking %q, want %q and %q", got.text, got.thinking, w.text, w.thinking)
			}
			if w.code == "" {
				if got.err != nil {
					t.Fatalf("err %v", got.err)
				}
				if got.res.DoneReason != w.reason || got.res.Usage != w.usage {
					t.Errorf("result %+v, want reason %q usage %+v", got.res, w.reason, w.usage)
				}
				return
			}
			var le *llm.Error
			if !errors.As(got.err, &le) {
				t.Fatalf("err %v (%T), want an *llm.Error", got.err, got.err)
			}
			if le.Code != w.code {
				t.Errorf("code %q (%v), want %s", le.Code, got.err, w.code)
			}
			if w.cause != nil && !errors.Is(got.err, w.cause) {
				t.Errorf("err %v, want cause %v", got.err, w.cause)
			}
			if le.Retryable != w.retryable {
				t.Errorf("retryable %v, want %v (%v)", le.Retryable, w.retryable, got.err)
			}
			// An HTTP-date hint was written when the table was built and
			// counts down (in whole seconds) until the server answers.
			if d := le.RetryAfter - w.retryAfter; d < -30*time.Second || d > 0 || (w.retryAfter == 0) != (le.RetryAfter == 0) {
				t.Errorf("RetryAfter %v, want %v", le.RetryAfter, w.retryAfter)
			}
			if !strings.Contains(le.Message, w.msg) {
				t.Errorf("message %q, want it to contain %q", le.Message, w.msg)
			}
			if w.cancelled {
				up.WaitCancelled(t, 1)
			}
		})
	}
}

// TestStreamSplitUTF8 streams a character split across two chunks, as a
// server that sends raw token bytes does: the deltas carry the bytes
// intact, and UTF8Carry joins them.
func TestStreamSplitUTF8(t *testing.T) {
	t.Parallel()
	for _, flavor := range []testkit.OpenAIFlavor{ollamaFlavor, openaiFlavor} {
		t.Run(flavor.String(), func(t *testing.T) {
			t.Parallel()
			up := testkit.NewScriptedOpenAI(t, testkit.ScriptedOpenAIConfig{Flavor: flavor})
			pieces := []string{"a\xe2", "\x82", "\xac😀\xf0\x9f", "\x98\x80<\"\\\n\x01", "\xffz"}
			sc := testkit.Script{}
			for _, pc := range pieces {
				sc = append(sc, testkit.StepContent(pc).SplitEvery(2).Pause(0))
			}
			up.Push(append(sc, testkit.StepDone()))
			got := stream(t, provider(t, up.URL(), openai.Config{}), context.Background(), req)
			if got.err != nil {
				t.Fatal(got.err)
			}
			if len(got.deltas) != len(pieces) {
				t.Fatalf("%d deltas, want %d: %q", len(got.deltas), len(pieces), got.deltas)
			}
			var carry llm.UTF8Carry
			var joined strings.Builder
			for i, d := range got.deltas {
				if d.Text != pieces[i] {
					t.Errorf("delta %d = %q, want the bytes %q", i, d.Text, pieces[i])
				}
				joined.WriteString(carry.Push(d.Text))
			}
			joined.WriteString(carry.Flush())
			if want := strings.Join(pieces, ""); joined.String() != want {
				t.Errorf("joined %q, want %q", joined.String(), want)
			}
		})
	}
}

// TestRequest checks what goes over the wire.
func TestRequest(t *testing.T) {
	t.Parallel()
	const key = "sk-test-0123456789abcdef"
	tests := []struct {
		name      string
		cfg       openai.Config
		maxTokens int
	}{
		{"no key, no max", openai.Config{}, 0},
		{"key and max", openai.Config{APIKey: key}, 42},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			up := testkit.NewScriptedOpenAI(t, testkit.ScriptedOpenAIConfig{APIKey: tt.cfg.APIKey})
			p := provider(t, up.URL(), tt.cfg)
			r := llm.Request{Model: "m", MaxTokens: tt.maxTokens, Messages: []llm.Message{
				{Role: llm.RoleSystem, Content: "be brief"}, {Role: llm.RoleUser, Content: "é <b> \"q\""}, {Role: llm.RoleAssistant, Content: "ok"}, {Role: llm.RoleUser, Content: "again"},
			}}
			if got := stream(t, p, context.Background(), r); got.err != nil || got.text != testkit.DefaultScriptedReply {
				t.Fatalf("%q %v", got.text, got.err)
			}
			rec := up.WaitRequests(t, 1)[0]
			if auth := rec.Header.Get("Authorization"); (tt.cfg.APIKey == "" && auth != "") || (tt.cfg.APIKey != "" && auth != "Bearer "+key) {
				t.Errorf("Authorization %q", auth)
			}
			if ct, acc := rec.Header.Get("Content-Type"), rec.Header.Get("Accept"); ct != "application/json" || acc != "text/event-stream" {
				t.Errorf("Content-Type %q, Accept %q", ct, acc)
			}
			var body map[string]json.RawMessage
			if err := json.Unmarshal(rec.Body, &body); err != nil {
				t.Fatal(err)
			}
			if string(body["stream"]) != "true" || string(body["stream_options"]) != `{"include_usage":true}` || string(body["model"]) != `"m"` {
				t.Errorf("body %s", rec.Body)
			}
			if mt, ok := body["max_tokens"]; (tt.maxTokens == 0) == ok || (ok && string(mt) != "42") {
				t.Errorf("max_tokens %s in %s", mt, rec.Body)
			}
			if len(rec.Chat.Messages) != 4 || rec.Chat.Messages[1].Content != "é <b> \"q\"" || rec.Chat.Messages[2].Role != "assistant" {
				t.Errorf("messages %+v", rec.Chat.Messages)
			}
		})
	}
}

// TestUnauthorized: a missing or wrong key is upstream_error with the
// server's message, not retryable; Check fails the same way.
func TestUnauthorized(t *testing.T) {
	t.Parallel()
	up := testkit.NewScriptedOpenAI(t, testkit.ScriptedOpenAIConfig{Flavor: openaiFlavor, APIKey: "sk-right-0123456789"})
	for _, key := range []string{"", "sk-wrong-0123456789"} {
		p := provider(t, up.URL(), openai.Config{APIKey: key})
		got := stream(t, p, context.Background(), req)
		var le *llm.Error
		if !errors.As(got.err, &le) || le.Code != llm.CodeUpstreamError || le.Retryable || !strings.HasPrefix(le.Message, "401 Unauthorized: ") {
			t.Errorf("key %q: %v", key, got.err)
		}
		var se *openai.StatusError
		if !errors.As(got.err, &se) || se.StatusCode != 401 || se.Code != "invalid_api_key" || se.Type != "invalid_request_error" {
			t.Errorf("key %q: cause %+v", key, se)
		}
		if strings.Contains(got.err.Error(), "sk-wrong-0123456789") {
			t.Errorf("error shows the key: %v", got.err)
		}
		if err := p.Check(context.Background()); llm.CodeOf(err) != llm.CodeUpstreamError {
			t.Errorf("check with key %q: %v", key, err)
		}
	}
}

// TestModelNotFound: Ollama's 404 for an unknown model.
func TestModelNotFound(t *testing.T) {
	t.Parallel()
	up := testkit.NewScriptedOpenAI(t, testkit.ScriptedOpenAIConfig{Models: []string{"tiny"}})
	p := provider(t, up.URL(), openai.Config{})
	r := req
	r.Model = "nope"
	got := stream(t, p, context.Background(), r)
	var le *llm.Error
	if !errors.As(got.err, &le) || le.Code != llm.CodeUpstreamError || le.Retryable || le.Message != "404 Not Found: model 'nope' not found" {
		t.Fatalf("%v", got.err)
	}
}

// TestStreamCancel: cancelling the context cancels the HTTP request (the
// upstream sees its client go) and returns the context's error, not an
// upstream error, whether the cancel comes mid-stream or before the
// first byte.
func TestStreamCancel(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name   string
		script testkit.Script
		after  bool // cancel after the first delta
	}{
		{"mid-stream", testkit.Script{testkit.StepContent("a"), testkit.StepBlock()}, true},
		{"before output", testkit.Script{testkit.StepBlock()}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			up := testkit.NewScriptedOpenAI(t, testkit.ScriptedOpenAIConfig{})
			up.Push(tt.script)
			p := provider(t, up.URL(), openai.Config{})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			got := make(chan struct{}, 1)
			errc := make(chan error, 1)
			go func() {
				_, err := p.Stream(ctx, req, func(llm.Delta) { got <- struct{}{} })
				errc <- err
			}()
			if tt.after {
				<-got
			} else {
				up.WaitRequests(t, 1)
			}
			cancel()
			if err := <-errc; !errors.Is(err, context.Canceled) || llm.CodeOf(err) != "" {
				t.Fatalf("err %v", err)
			}
			up.WaitCancelled(t, 1)
		})
	}
}

// TestUnavailable: nothing listens there.
func TestUnavailable(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String() + "/v1"
	ln.Close()
	p := provider(t, url, openai.Config{})
	got := stream(t, p, context.Background(), req)
	if llm.CodeOf(got.err) != llm.CodeUpstreamUnavailable || !llm.IsRetryable(got.err) || !strings.Contains(got.err.Error(), url) {
		t.Errorf("stream: %v", got.err)
	}
	if err := p.Check(context.Background()); llm.CodeOf(err) != llm.CodeUpstreamUnavailable || !llm.IsRetryable(err) {
		t.Errorf("check: %v", err)
	}
	if _, err := p.Models(context.Background()); llm.CodeOf(err) != llm.CodeUpstreamUnavailable {
		t.Errorf("models: %v", err)
	}
}

// TestCheckTimeout: a server that accepts but never answers fails Check
// within IdleTimeout.
func TestCheckTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	p := provider(t, srv.URL+"/v1", openai.Config{IdleTimeout: 150 * time.Millisecond})
	start := time.Now()
	err := p.Check(context.Background())
	if llm.CodeOf(err) != llm.CodeUpstreamUnavailable || !strings.Contains(err.Error(), "did not answer within 150ms") {
		t.Errorf("check: %v", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("check took %v", el)
	}
}

func TestCheckAndModels(t *testing.T) {
	t.Parallel()
	up := testkit.NewScriptedOpenAI(t, testkit.ScriptedOpenAIConfig{Models: []string{"tiny", "llama3.2:3b"}})
	p := provider(t, up.URL(), openai.Config{})
	if err := p.Check(context.Background()); err != nil {
		t.Fatal(err)
	}
	models, err := p.Models(context.Background())
	if err != nil || len(models) != 2 || models[0] != (llm.ModelInfo{Name: "tiny:latest"}) || models[1].Name != "llama3.2:3b" {
		t.Fatalf("%+v %v", models, err)
	}

	or := testkit.NewScriptedOpenAI(t, testkit.ScriptedOpenAIConfig{Flavor: openaiFlavor, APIKey: "sk-or-0123456789",
		Models: []string{"openai/gpt-4o", "meta-llama/llama-3.1-8b"}, ContextLength: map[string]int{"openai/gpt-4o": 128000}})
	p = provider(t, or.URL(), openai.Config{APIKey: "sk-or-0123456789"})
	models, err = p.Models(context.Background())
	if err != nil || len(models) != 2 || models[0] != (llm.ModelInfo{Name: "openai/gpt-4o", ContextLength: 128000}) || models[1].ContextLength != 0 {
		t.Fatalf("%+v %v", models, err)
	}
	if n, err := p.ContextLength(context.Background(), "openai/gpt-4o"); n != 128000 || err != nil {
		t.Errorf("ContextLength %d %v", n, err)
	}
	if n, err := p.ContextLength(context.Background(), "unknown"); n != 0 || err != nil {
		t.Errorf("ContextLength of an unlisted model %d %v", n, err)
	}
}

// TestModelsContextFields reads the context window under the names vLLM
// and Groq give it, from a real server answering fixed bodies.
func TestModelsContextFields(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/models" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"object":"list","data":[`+
			`{"id":"Qwen/Qwen2.5-7B","object":"model","owned_by":"vllm","root":"Qwen/Qwen2.5-7B","max_model_len":32768},`+
			`{"id":"llama-3.1-8b-instant","object":"model","owned_by":"Meta","context_window":131072},`+
			`{"id":"plain","object":"model"}]}`)
	}))
	t.Cleanup(srv.Close)
	models, err := provider(t, srv.URL+"/v1", openai.Config{}).Models(context.Background())
	want := []llm.ModelInfo{{Name: "Qwen/Qwen2.5-7B", ContextLength: 32768}, {Name: "llama-3.1-8b-instant", ContextLength: 131072}, {Name: "plain"}}
	if err != nil || len(models) != 3 || models[0] != want[0] || models[1] != want[1] || models[2] != want[2] {
		t.Fatalf("%+v %v", models, err)
	}
}

func TestConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cfg  openai.Config
		ok   bool
		base string
	}{
		{openai.Config{}, true, "https://api.openai.com/v1"},
		{openai.Config{BaseURL: "http://127.0.0.1:11434/v1/"}, true, "http://127.0.0.1:11434/v1"},
		{openai.Config{BaseURL: "http://127.0.0.1:11434"}, true, "http://127.0.0.1:11434/v1"},
		{openai.Config{BaseURL: "https://openrouter.ai/api/v1"}, true, "https://openrouter.ai/api/v1"},
		{openai.Config{BaseURL: "https://user:pw@proxy.example/v1"}, true, "https://proxy.example/v1"},
		{openai.Config{BaseURL: "127.0.0.1:8000/v1"}, false, ""},
		{openai.Config{BaseURL: "ftp://box/v1"}, false, ""},
		{openai.Config{BaseURL: "http:///v1"}, false, ""},
		{openai.Config{APIKey: "sk-\nX-Evil: 1"}, false, ""},
		{openai.Config{IdleTimeout: -1}, false, ""},
		{openai.Config{FirstTokenTimeout: time.Hour, TotalTimeout: time.Minute}, false, ""},
	}
	for _, tt := range tests {
		p, err := openai.New(tt.cfg)
		if (err == nil) != tt.ok {
			t.Errorf("%+v: %v", tt.cfg, err)
			continue
		}
		if err == nil {
			if p.BaseURL() != tt.base {
				t.Errorf("%+v: base %s", tt.cfg, p.BaseURL())
			}
			if p.Name() != "openai" {
				t.Errorf("Name %q", p.Name())
			}
		}
		if err != nil && strings.Contains(err.Error(), "pw") {
			t.Errorf("error shows credentials: %v", err)
		}
	}
}

// TestConnectionReuse: a stream read to its [DONE] leaves its connection
// for the next request (no new TCP or TLS handshake per generation).
func TestConnectionReuse(t *testing.T) {
	t.Parallel()
	for _, flavor := range []testkit.OpenAIFlavor{ollamaFlavor, openaiFlavor} {
		t.Run(flavor.String(), func(t *testing.T) {
			t.Parallel()
			up := testkit.NewScriptedOpenAI(t, testkit.ScriptedOpenAIConfig{Flavor: flavor})
			p := provider(t, up.URL(), openai.Config{})
			var reused []bool
			ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
				GotConn: func(info httptrace.GotConnInfo) { reused = append(reused, info.Reused) },
			})
			for range 3 {
				if got := stream(t, p, ctx, req); got.err != nil {
					t.Fatal(got.err)
				}
			}
			if len(reused) != 3 || reused[0] || !reused[1] || !reused[2] {
				t.Errorf("connections reused: %v, want [false true true]", reused)
			}
		})
	}
}

// TestBodyOpenAfterDone: a server that keeps the response open after
// [DONE] does not hold up the completed reply; its request is cut.
func TestBodyOpenAfterDone(t *testing.T) {
	t.Parallel()
	up := testkit.NewScriptedOpenAI(t, testkit.ScriptedOpenAIConfig{})
	up.Push(testkit.Script{testkit.StepContent("ab"), testkit.StepFinish("stop"), testkit.StepDoneMarker(), testkit.StepBlock()})
	p := provider(t, up.URL(), openai.Config{})
	start := time.Now()
	got := stream(t, p, context.Background(), req)
	if got.err != nil || got.text != "ab" || got.res.DoneReason != "stop" {
		t.Fatalf("%+v", got)
	}
	if el := time.Since(start); el > 3*time.Second {
		t.Errorf("Stream returned after %v", el)
	}
	up.WaitCancelled(t, 1)
}
