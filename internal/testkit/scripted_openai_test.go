package testkit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// oaiChatBody is a streaming chat request body for model.
func oaiChatBody(model string, includeUsage bool) string {
	so := ""
	if includeUsage {
		so = `,"stream_options":{"include_usage":true}`
	}
	return fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"hi"}],"stream":true%s}`, model, so)
}

type oaiAnswer struct {
	status int
	header http.Header
	body   []byte
	err    error // body read error
}

// rawOpenAI posts body to base+"/chat/completions" with the given headers
// (pairs) and reads the whole answer.
func rawOpenAI(t *testing.T, ctx context.Context, base, body string, header ...string) oaiAnswer {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/chat/completions", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST /chat/completions: %v", err)
	}
	defer resp.Body.Close()
	b, rerr := io.ReadAll(resp.Body)
	return oaiAnswer{resp.StatusCode, resp.Header, b, rerr}
}

var (
	oaiIDRE      = regexp.MustCompile(`"id":"chatcmpl-[0-9a-f]+"`)
	oaiCreatedRE = regexp.MustCompile(`"created":\d+`)
	oaiFpRE      = regexp.MustCompile(`"system_fingerprint":"fp_[0-9a-f]+"`)
)

// oaiEvents splits an event stream into its events (without the blank
// line that ends each) with the id, created time and an OpenAI-style
// fingerprint masked.
func oaiEvents(t *testing.T, body []byte) []string {
	t.Helper()
	s := string(body)
	if s != "" && !strings.HasSuffix(s, "\n\n") {
		t.Errorf("event stream does not end with a blank line: %q", s)
	}
	var out []string
	for ev := range strings.SplitSeq(strings.TrimSuffix(s, "\n\n"), "\n\n") {
		if ev == "" {
			continue
		}
		ev = oaiIDRE.ReplaceAllString(ev, `"id":"ID"`)
		ev = oaiCreatedRE.ReplaceAllString(ev, `"created":0`)
		if !strings.Contains(ev, "fp_ollama") {
			ev = oaiFpRE.ReplaceAllString(ev, `"system_fingerprint":"FP"`)
		}
		out = append(out, ev)
	}
	return out
}

func TestScriptedOpenAIWireFormat(t *testing.T) {
	t.Parallel()
	const (
		ollHead = `data: {"id":"ID","object":"chat.completion.chunk","created":0,"model":"tiny","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":`
		oaiHead = `data: {"id":"ID","object":"chat.completion.chunk","created":0,"model":"gpt-4o","service_tier":"default","system_fingerprint":"FP","choices":[{"index":0,"delta":`
	)
	script := Script{StepContent("a<b"), StepThinking("hm"), StepContent("é"), StepDoneWith(DoneStats{Reason: "length", PromptEvalCount: 7, EvalCount: 3})}
	tests := []struct {
		name    string
		flavor  OpenAIFlavor
		model   string
		usage   bool
		wantCT  string
		wantEvs []string
	}{
		{"ollama with usage", FlavorOllama, "tiny", true, "text/event-stream", []string{
			ollHead + `{"role":"assistant","content":"a\u003cb"},"finish_reason":null}]}`,
			ollHead + `{"role":"assistant","content":"","reasoning":"hm"},"finish_reason":null}]}`,
			ollHead + `{"role":"assistant","content":"é"},"finish_reason":null}]}`,
			ollHead + `{"role":"assistant","content":""},"finish_reason":"length"}]}`,
			`data: {"id":"ID","object":"chat.completion.chunk","created":0,"model":"tiny","system_fingerprint":"fp_ollama","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}`,
			`data: [DONE]`,
		}},
		{"ollama without usage", FlavorOllama, "tiny", false, "text/event-stream", []string{
			ollHead + `{"role":"assistant","content":"a\u003cb"},"finish_reason":null}]}`,
			ollHead + `{"role":"assistant","content":"","reasoning":"hm"},"finish_reason":null}]}`,
			ollHead + `{"role":"assistant","content":"é"},"finish_reason":null}]}`,
			ollHead + `{"role":"assistant","content":""},"finish_reason":"length"}]}`,
			`data: [DONE]`,
		}},
		{"openai with usage", FlavorOpenAI, "gpt-4o", true, "text/event-stream; charset=utf-8", []string{
			oaiHead + `{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}`,
			oaiHead + `{"content":"a\u003cb"},"logprobs":null,"finish_reason":null}],"usage":null}`,
			oaiHead + `{"content":null,"reasoning_content":"hm"},"logprobs":null,"finish_reason":null}],"usage":null}`,
			oaiHead + `{"content":"é"},"logprobs":null,"finish_reason":null}],"usage":null}`,
			oaiHead + `{},"logprobs":null,"finish_reason":"length"}],"usage":null}`,
			`data: {"id":"ID","object":"chat.completion.chunk","created":0,"model":"gpt-4o","service_tier":"default","system_fingerprint":"FP","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}}`,
			`data: [DONE]`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := NewScriptedOpenAI(t, ScriptedOpenAIConfig{Flavor: tt.flavor, Models: []string{tt.model}})
			s.Push(script)
			a := rawOpenAI(t, context.Background(), s.URL(), oaiChatBody(tt.model, tt.usage))
			if a.err != nil || a.status != 200 || a.header.Get("Content-Type") != tt.wantCT {
				t.Fatalf("status %d, content type %q, read error %v", a.status, a.header.Get("Content-Type"), a.err)
			}
			got := oaiEvents(t, a.body)
			if strings.Join(got, "\n") != strings.Join(tt.wantEvs, "\n") {
				t.Errorf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.wantEvs, "\n"))
			}
			for _, ev := range got[:len(got)-1] {
				var v map[string]any
				if err := json.Unmarshal([]byte(strings.TrimPrefix(ev, "data: ")), &v); err != nil {
					t.Errorf("event %q is not JSON: %v", ev, err)
				}
			}
			reqs := s.Requests()
			if len(reqs) != 1 || reqs[0].Chat.Model != tt.model || !reqs[0].Chat.Stream || len(reqs[0].Chat.Messages) != 1 {
				t.Fatalf("recorded requests %+v", reqs)
			}
			if tt.usage != (reqs[0].Chat.StreamOptions != nil && reqs[0].Chat.StreamOptions.IncludeUsage) {
				t.Errorf("recorded stream_options %+v", reqs[0].Chat.StreamOptions)
			}
			select {
			case <-reqs[0].Cancelled():
				t.Error("a completed request was recorded as cancelled")
			default:
			}
		})
	}
}

// TestScriptedOpenAIPieces checks the steps that send one piece of the
// ending on its own, comments, and defaults of the usage chunk.
func TestScriptedOpenAIPieces(t *testing.T) {
	t.Parallel()
	s := NewScriptedOpenAI(t, ScriptedOpenAIConfig{})
	s.Push(Script{StepComment("OPENROUTER PROCESSING"), StepContent("x"), StepContent("y"), StepFinish("stop"), StepUsage(DoneStats{}), StepDoneMarker(), StepEnd()})
	a := rawOpenAI(t, context.Background(), s.URL(), oaiChatBody("m", false))
	evs := oaiEvents(t, a.body)
	if len(evs) != 6 || evs[0] != ": OPENROUTER PROCESSING" || !strings.Contains(evs[3], `"finish_reason":"stop"`) ||
		!strings.HasSuffix(evs[4], `"choices":[],"usage":{"prompt_tokens":2,"completion_tokens":2,"total_tokens":4}}`) || evs[5] != "data: [DONE]" {
		t.Errorf("events %q", evs)
	}
}

func TestScriptedOpenAIErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		cfg        ScriptedOpenAIConfig
		body       string
		header     []string
		script     Script
		wantStatus int
		wantHeader map[string]string
		wantBody   string // as checkBody takes it
		wantCut    bool
	}{
		{
			name: "ollama model not found", cfg: ScriptedOpenAIConfig{Models: []string{"tiny"}}, body: oaiChatBody("nope", true),
			wantStatus: 404, wantHeader: map[string]string{"Content-Type": "application/json"},
			wantBody: `{"error":{"message":"model 'nope' not found","type":"api_error","param":null,"code":null}}` + "\n",
		},
		{
			name: "ollama tag matching", cfg: ScriptedOpenAIConfig{Models: []string{"tiny"}}, body: oaiChatBody("Tiny:latest", false),
			wantStatus: 200, wantBody: "…data: [DONE]\n\n",
		},
		{
			name: "openai model not found", cfg: ScriptedOpenAIConfig{Flavor: FlavorOpenAI, Models: []string{"gpt-4o"}}, body: oaiChatBody("gpt-5x", true),
			wantStatus: 404,
			wantBody:   "{\n    \"error\": {\n        \"message\": \"The model `gpt-5x` does not exist or you do not have access to it.\",\n        \"type\": \"invalid_request_error\",\n        \"param\": null,\n        \"code\": \"model_not_found\"\n    }\n}\n",
		},
		{
			name: "ollama empty messages", body: `{"model":"m","messages":[],"stream":true}`,
			wantStatus: 400, wantHeader: map[string]string{"Content-Type": "application/json; charset=utf-8"},
			wantBody: `{"error":{"message":"[] is too short - 'messages'","type":"invalid_request_error","param":null,"code":null}}`,
		},
		{
			name: "ollama no model", body: `{"messages":[{"role":"user","content":"hi"}],"stream":true}`,
			wantStatus: 400, wantBody: `{"error":{"message":"model is required","type":"api_error","param":null,"code":null}}` + "\n",
		},
		{
			name: "not streaming", body: `{"model":"m","messages":[{"role":"user","content":"hi"}]}`,
			wantStatus: 400, wantBody: "~only stream:true",
		},
		{
			name: "429 with Retry-After", body: oaiChatBody("m", true),
			script:     Script{StepHeader("Retry-After", "7"), StepErrorStatus(429, "server busy, please try again.  maximum pending requests exceeded")},
			wantStatus: 429, wantHeader: map[string]string{"Retry-After": "7", "Content-Type": "application/json"},
			wantBody: `{"error":{"message":"server busy, please try again.  maximum pending requests exceeded","type":"api_error","param":null,"code":null}}` + "\n",
		},
		{
			name: "openai 429", cfg: ScriptedOpenAIConfig{Flavor: FlavorOpenAI}, body: oaiChatBody("m", true),
			script:     Script{StepHeader("Retry-After", "2"), StepHeader("Retry-After-Ms", "1500"), StepErrorStatus(429, "Rate limit reached")},
			wantStatus: 429, wantHeader: map[string]string{"Retry-After": "2", "Retry-After-Ms": "1500"},
			wantBody: "~\"code\": \"rate_limit_exceeded\"",
		},
		{
			name: "500 before output", body: oaiChatBody("m", true),
			script:     Script{StepDelay(time.Millisecond), StepError("model runner crashed")},
			wantStatus: 500, wantBody: `{"error":{"message":"model runner crashed","type":"api_error","param":null,"code":null}}` + "\n",
		},
		{
			name: "ollama error mid-stream", body: oaiChatBody("m", true),
			script:     Script{StepContent("par"), StepError("model crashed")},
			wantStatus: 200,
			wantBody:   `…"content":"par"},"finish_reason":null}]}` + "\n\n" + `data: {"id":"ID","object":"chat.completion.chunk","created":0,"model":"","system_fingerprint":"fp_ollama","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}` + "\n\n",
		},
		{
			name: "openai error mid-stream", cfg: ScriptedOpenAIConfig{Flavor: FlavorOpenAI}, body: oaiChatBody("m", false),
			script:     Script{StepContent("par"), StepError("The server had an error while processing your request.")},
			wantStatus: 200,
			wantBody:   `…"content":"par"},"logprobs":null,"finish_reason":null}]}` + "\n\n" + `data: {"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}` + "\n\n",
		},
		{
			name: "end without done", body: oaiChatBody("m", true),
			script:     Script{StepContent("x"), StepEnd(), StepDone()},
			wantStatus: 200, wantBody: `…"content":"x"},"finish_reason":null}]}` + "\n\n",
		},
		{
			name: "cut", body: oaiChatBody("m", true),
			script:     Script{StepContent("x"), StepCut()},
			wantStatus: 200, wantBody: `…"content":"x"},"finish_reason":null}]}` + "\n\n", wantCut: true,
		},
		{
			name: "proxy page", body: oaiChatBody("m", true),
			script:     Script{StepResponse(502, "text/html", "<html>bad gateway</html>")},
			wantStatus: 502, wantHeader: map[string]string{"Content-Type": "text/html"}, wantBody: "<html>bad gateway</html>",
		},
		{
			name: "no key", cfg: ScriptedOpenAIConfig{APIKey: "sk-test-0123456789"}, body: oaiChatBody("m", true),
			wantStatus: 401, wantBody: `~"code":"invalid_api_key"`,
		},
		{
			name: "wrong key", cfg: ScriptedOpenAIConfig{APIKey: "sk-test-0123456789"}, body: oaiChatBody("m", true),
			header: []string{"Authorization", "Bearer sk-wrong-0123456789"}, wantStatus: 401, wantBody: "~Incorrect API key provided: sk-************6789.",
		},
		{
			name: "right key", cfg: ScriptedOpenAIConfig{APIKey: "sk-test-0123456789"}, body: oaiChatBody("m", true),
			header: []string{"Authorization", "Bearer sk-test-0123456789"}, wantStatus: 200, wantBody: "…data: [DONE]\n\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := NewScriptedOpenAI(t, tt.cfg)
			if tt.script != nil {
				s.Push(tt.script)
			}
			a := rawOpenAI(t, context.Background(), s.URL(), tt.body, tt.header...)
			if a.status != tt.wantStatus {
				t.Errorf("status %d, want %d (body %q)", a.status, tt.wantStatus, a.body)
			}
			for k, v := range tt.wantHeader {
				if got := a.header.Get(k); got != v {
					t.Errorf("header %s: %q, want %q", k, got, v)
				}
			}
			body := string(a.body)
			if a.status == 200 {
				body = strings.Join(oaiEvents(t, a.body), "\n\n") + "\n\n"
			}
			checkBody(t, body, tt.wantBody)
			if gotCut := errors.Is(a.err, io.ErrUnexpectedEOF); gotCut != tt.wantCut {
				t.Errorf("body read error %v, want cut=%v", a.err, tt.wantCut)
			}
			if len(s.WaitRequests(t, 1)) != 1 {
				t.Error("request not recorded")
			}
		})
	}
}

func TestScriptedOpenAIModels(t *testing.T) {
	t.Parallel()
	get := func(t *testing.T, url, key string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	type list struct {
		Object string `json:"object"`
		Data   []struct {
			ID            string `json:"id"`
			Object        string `json:"object"`
			OwnedBy       string `json:"owned_by"`
			ContextLength int    `json:"context_length"`
		} `json:"data"`
	}
	decode := func(t *testing.T, b string) list {
		var l list
		if err := json.Unmarshal([]byte(b), &l); err != nil {
			t.Fatalf("%q: %v", b, err)
		}
		return l
	}

	oll := NewScriptedOpenAI(t, ScriptedOpenAIConfig{Models: []string{"tiny", "tiny-long:latest"}})
	st, b := get(t, oll.URL()+"/models", "")
	if l := decode(t, b); st != 200 || l.Object != "list" || len(l.Data) != 2 || l.Data[0].ID != "tiny:latest" || l.Data[0].OwnedBy != "library" || l.Data[1].ID != "tiny-long:latest" || strings.Contains(b, "context_length") {
		t.Errorf("ollama /v1/models: %d %s", st, b)
	}
	if st, _ := get(t, oll.URL()+"/nothing", ""); st != 404 {
		t.Errorf("unknown path: %d", st)
	}

	or := NewScriptedOpenAI(t, ScriptedOpenAIConfig{Flavor: FlavorOpenAI, APIKey: "sk-test-0123456789",
		Models: []string{"openai/gpt-4o", "meta-llama/llama-3.1-8b"}, ContextLength: map[string]int{"openai/gpt-4o": 128000}})
	if st, b := get(t, or.URL()+"/models", ""); st != 401 || !strings.Contains(b, "invalid_api_key") {
		t.Errorf("models without key: %d %s", st, b)
	}
	st, b = get(t, or.URL()+"/models", "sk-test-0123456789")
	if l := decode(t, b); st != 200 || len(l.Data) != 2 || l.Data[0].ID != "openai/gpt-4o" || l.Data[0].ContextLength != 128000 || l.Data[1].ContextLength != 0 {
		t.Errorf("openai /v1/models: %d %s", st, b)
	}
}

// TestScriptedOpenAISplitUTF8 checks that a character split across two
// chunks arrives as raw bytes (not U+FFFD) in each chunk's JSON, and that
// SplitAt puts the pieces of one event into separate reads.
func TestScriptedOpenAISplitUTF8(t *testing.T) {
	t.Parallel()
	s := NewScriptedOpenAI(t, ScriptedOpenAIConfig{})
	text := "a€😀b" // 1+3+4+1 bytes
	s.Push(Script{
		StepContent("x\xe2\x82"), StepContent("\xacy"), // € across two chunks
		StepContent(text).SplitAt(2, 5).Pause(20 * time.Millisecond), // one chunk across reads, inside € and 😀
		StepDone(),
	})
	reads, all := readEach(post(t, s.URL()+"/chat/completions", oaiChatBody("m", false)).Body)
	if !bytes.Contains(all, []byte(`"content":"x`+"\xe2\x82"+`"}`)) || !bytes.Contains(all, []byte(`"content":"`+"\xac"+`y"}`)) {
		t.Errorf("split character not sent raw: %q", all)
	}
	i := -1
	for j, r := range reads {
		if strings.HasSuffix(r, "\"content\":\"a\xe2") {
			i = j
		}
	}
	if i < 0 || i+2 >= len(reads) || reads[i+1] != "\x82\xac\xf0" || !strings.HasPrefix(reads[i+2], "\x9f\x98\x80b\"}") {
		t.Errorf("reads %q", reads)
	}
}

func TestAppendJSONText(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"", "plain", "a<b>&c", "quote\" back\\slash", "\n\r\t\b\f\x00\x1f\x7f", "é€😀", "\u2028\u2029", "\ufffd"} {
		want, _ := json.Marshal(s)
		if got := appendJSONText(nil, s); !bytes.Equal(got, want) {
			t.Errorf("appendJSONText(%q) = %s, want %s as encoding/json", s, got, want)
		}
	}
	if got := string(appendJSONText(nil, "a\xe2\x82<\xff")); got != "\"a\xe2\x82\\u003c\xff\"" {
		t.Errorf("invalid bytes: %q", got)
	}
}

// TestScriptedOpenAICancel checks that a client that goes away while the
// script holds, blocks or delays is recorded as having cancelled.
func TestScriptedOpenAICancel(t *testing.T) {
	testCancel(t, func(t *testing.T, script Script) cancelCase {
		s := NewScriptedOpenAI(t, ScriptedOpenAIConfig{})
		s.Push(script)
		return cancelCase{s, func() recordedRequest { return s.Requests()[0] }, func(ctx context.Context) error {
			return rawOpenAI(t, ctx, s.URL(), oaiChatBody("m", true)).err
		}}
	})
}

// TestScriptedOpenAITiming checks a slow first token and a pause between
// tokens: the first event arrives no sooner than the first delay, the
// second no sooner than the pause after it.
func TestScriptedOpenAITiming(t *testing.T) {
	t.Parallel()
	const first, gap = 150 * time.Millisecond, 100 * time.Millisecond
	s := NewScriptedOpenAI(t, ScriptedOpenAIConfig{})
	s.Push(Script{StepDelay(first), StepContent("a"), StepDelay(gap), StepContent("b"), StepDone()})
	start := time.Now()
	resp := post(t, s.URL()+"/chat/completions", oaiChatBody("m", false))
	var at []time.Duration
	buf := make([]byte, 4096)
	var seen bytes.Buffer
	for len(at) < 2 {
		n, err := resp.Body.Read(buf)
		seen.Write(buf[:n])
		for len(at) < bytes.Count(seen.Bytes(), []byte(`"content":"`)) {
			at = append(at, time.Since(start))
		}
		if err != nil {
			break
		}
	}
	if len(at) < 2 || at[0] < first || at[1]-at[0] < gap-10*time.Millisecond {
		t.Errorf("events at %v, want the first after %v and the second %v later", at, first, gap)
	}
}

// TestScriptedOpenAIConcurrent checks that concurrent requests each take
// one pushed script, then fall back to the configured Script.
func TestScriptedOpenAIConcurrent(t *testing.T) {
	t.Parallel()
	s := NewScriptedOpenAI(t, ScriptedOpenAIConfig{Script: func(r *ScriptedOpenAIRequest) Script {
		return echoScript(r.Chat.Messages[0].Content)
	}})
	testConcurrent(t, 8, s.Push, func() string {
		return string(rawOpenAI(t, context.Background(), s.URL(), oaiChatBody("m", false)).body)
	})
}

// TestScriptedOpenAIMatchesRealOllama compares the scripted server's bytes
// with a real Ollama v0.17.4's /v1 (skipped without one): headers, the
// chunks with their keys in wire order, the usage chunk, [DONE], and the
// answers for a missing model, a missing model name and no messages.
func TestScriptedOpenAIMatchesRealOllama(t *testing.T) {
	base := RealOllama(t) + "/v1"
	t.Parallel()
	s := NewScriptedOpenAI(t, ScriptedOpenAIConfig{Models: []string{TinyModel}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	real, fake := rawOpenAI(t, ctx, base, oaiChatBody(TinyModel, true)), rawOpenAI(t, ctx, s.URL(), oaiChatBody(TinyModel, true))
	if real.err != nil || fake.err != nil {
		t.Fatalf("read errors: real %v, scripted %v", real.err, fake.err)
	}
	if real.status != fake.status || real.header.Get("Content-Type") != fake.header.Get("Content-Type") {
		t.Errorf("real %d %q, scripted %d %q", real.status, real.header.Get("Content-Type"), fake.status, fake.header.Get("Content-Type"))
	}
	// Each event's shape: text with every JSON scalar replaced by its type.
	shapes := func(body []byte) []string {
		var out []string
		for _, ev := range oaiEvents(t, body) {
			data, ok := strings.CutPrefix(ev, "data: ")
			if !ok || data == "[DONE]" {
				out = append(out, ev)
				continue
			}
			out = append(out, "data: "+shape(t, []byte(data)))
		}
		return out
	}
	rs, fs := shapes(real.body), shapes(fake.body)
	if len(rs) < 4 || len(fs) < 4 {
		t.Fatalf("too few events: real %q, scripted %q", rs, fs)
	}
	// First content chunk, finish chunk, usage chunk, [DONE].
	for _, i := range []int{0, 3, 2, 1} {
		r, f := rs[0], fs[0]
		if i > 0 {
			r, f = rs[len(rs)-i], fs[len(fs)-i]
		}
		if r != f {
			t.Errorf("event shape differs (%d from the end):\nreal:     %s\nscripted: %s", i, r, f)
		}
	}
	if !bytes.Contains(real.body, []byte(`"system_fingerprint":"fp_ollama"`)) || !bytes.Contains(real.body, []byte(`"finish_reason":"length"}]}`)) {
		t.Errorf("real body lacks the expected finish chunk: %.300s…", real.body)
	}

	for _, body := range []string{
		oaiChatBody("no-such-model", true),
		`{"messages":[{"role":"user","content":"hi"}],"stream":true}`,
		`{"model":"tiny","messages":[],"stream":true}`,
	} {
		real, fake := rawOpenAI(t, ctx, base, body), rawOpenAI(t, ctx, s.URL(), body)
		if real.status != fake.status || real.header.Get("Content-Type") != fake.header.Get("Content-Type") || !bytes.Equal(real.body, fake.body) {
			t.Errorf("%s:\nreal %d %q %q\nscripted %d %q %q", body, real.status, real.header.Get("Content-Type"), real.body,
				fake.status, fake.header.Get("Content-Type"), fake.body)
		}
	}
}

// TestScriptedOllamaStepHeader: StepHeader works on ScriptedOllama too
// (a proxy in front of Ollama may send Retry-After), and the OpenAI-only
// steps are refused loudly there rather than skipped.
func TestScriptedOllamaStepHeader(t *testing.T) {
	t.Parallel()
	s := NewScriptedOllama(t, ScriptedConfig{})
	s.Push(Script{StepHeader("Retry-After", "9"), StepErrorStatus(503, "busy")})
	resp := post(t, s.URL()+"/api/chat", `{"model":"m","messages":[]}`)
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") != "9" {
		t.Errorf("%d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	func() {
		defer func() {
			if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "not an Ollama step") {
				t.Errorf("recovered %v, want a panic naming the step", r)
			}
		}()
		(&player{}).step(StepFinish("stop"))
	}()
}
