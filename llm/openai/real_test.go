package openai_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/llm"
	"github.com/parleyhq/parley/llm/ollama"
	"github.com/parleyhq/parley/llm/openai"
)

// These tests run against the real Ollama from scripts/ollama-test-env.sh
// (skipped unless PARLEY_TEST_OLLAMA_HOST is set): its /v1 endpoints
// through this provider, and /api/chat through llm/ollama for comparison.

func realProviders(t *testing.T) (*openai.Provider, *ollama.Provider) {
	t.Helper()
	base := testkit.RealOllama(t)
	oa := provider(t, base+"/v1", openai.Config{})
	ol, err := ollama.New(ollama.Config{BaseURL: base, Logger: testkit.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ol.Close() })
	return oa, ol
}

func realCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestRealOllamaMatchesAPIChat: with greedy decoding (top_k 1 in the test
// models' Modelfiles) the reply from /v1/chat/completions is the reply from
// /api/chat byte for byte, for several conversations, and both report the
// same token counts.
func TestRealOllamaMatchesAPIChat(t *testing.T) {
	oa, ol := realProviders(t)
	t.Parallel()
	ctx := realCtx(t)
	convs := [][]llm.Message{
		{{Role: llm.RoleUser, Content: "hi"}},
		{{Role: llm.RoleUser, Content: "Say hello."}},
		{{Role: llm.RoleSystem, Content: "You are terse."}, {Role: llm.RoleUser, Content: "é€😀 <b>&</b>"}, {Role: llm.RoleAssistant, Content: "ok"}, {Role: llm.RoleUser, Content: "again"}},
	}
	for i, msgs := range convs {
		r := llm.Request{Model: testkit.TinyModel, Messages: msgs}
		v1 := stream(t, oa, ctx, r)
		if v1.err != nil {
			t.Fatalf("conversation %d: /v1: %v", i, v1.err)
		}
		var native string
		nres, err := ol.Stream(ctx, r, func(d llm.Delta) { native += d.Text })
		if err != nil {
			t.Fatalf("conversation %d: /api/chat: %v", i, err)
		}
		if v1.text == "" {
			t.Errorf("conversation %d: empty reply", i)
		}
		if v1.text != native {
			t.Errorf("conversation %d: replies differ:\n/v1:       %q\n/api/chat: %q", i, v1.text, native)
		}
		if v1.res.Usage.PromptTokens <= 0 || v1.res.Usage.CompletionTokens <= 0 {
			t.Errorf("conversation %d: no usage reported: %+v", i, v1.res)
		}
		if v1.res.Usage != nres.Usage || v1.res.DoneReason != nres.DoneReason {
			t.Errorf("conversation %d: /v1 result %+v, /api/chat %+v", i, v1.res, nres)
		}
		t.Logf("conversation %d: %d deltas, %d bytes, %+v", i, len(v1.deltas), len(v1.text), v1.res)
	}
}

// TestRealOllamaMaxTokens: MaxTokens becomes max_tokens, which Ollama
// honours as num_predict.
func TestRealOllamaMaxTokens(t *testing.T) {
	oa, _ := realProviders(t)
	t.Parallel()
	r := llm.Request{Model: testkit.TinyLongModel, MaxTokens: 5, Messages: []llm.Message{{Role: llm.RoleUser, Content: "go"}}}
	got := stream(t, oa, realCtx(t), r)
	if got.err != nil || got.res.DoneReason != "length" || got.res.Usage.CompletionTokens != 5 {
		t.Fatalf("%+v %v", got.res, got.err)
	}
}

// TestRealOllamaLoopIsIncomplete: tiny-loop repeats itself and Ollama's
// /v1 then ends the stream with neither finish_reason nor [DONE]: a
// failed stream, never a completed reply.
func TestRealOllamaLoopIsIncomplete(t *testing.T) {
	oa, _ := realProviders(t)
	t.Parallel()
	r := llm.Request{Model: testkit.TinyLoopModel, Messages: []llm.Message{{Role: llm.RoleUser, Content: "Say hello."}}}
	got := stream(t, oa, realCtx(t), r)
	if got.text == "" || llm.CodeOf(got.err) != llm.CodeUpstreamError || !errors.Is(got.err, llm.ErrIncomplete) || llm.IsRetryable(got.err) {
		t.Fatalf("text %q, err %v: want text, then upstream_error wrapping ErrIncomplete", got.text, got.err)
	}
}

// TestRealOllamaErrorsAndModels: a missing model is Ollama's 404 with its
// message; /v1/models lists the test models; cancelling mid-stream returns
// ctx's error.
func TestRealOllamaErrorsAndModels(t *testing.T) {
	oa, _ := realProviders(t)
	t.Parallel()
	ctx := realCtx(t)

	r := llm.Request{Model: "no-such-model", Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}}
	got := stream(t, oa, ctx, r)
	var le *llm.Error
	if !errors.As(got.err, &le) || le.Code != llm.CodeUpstreamError || le.Retryable || le.Message != "404 Not Found: model 'no-such-model' not found" {
		t.Errorf("missing model: %v", got.err)
	}

	if err := oa.Check(ctx); err != nil {
		t.Errorf("check: %v", err)
	}
	models, err := oa.Models(ctx)
	found := false
	for _, m := range models {
		found = found || llm.SameModel(m.Name, testkit.TinyModel)
	}
	if err != nil || !found {
		t.Errorf("models %+v %v, want %s among them", models, err, testkit.TinyModel)
	}

	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n := 0
	_, err = oa.Stream(cctx, llm.Request{Model: testkit.TinyLongModel, Messages: []llm.Message{{Role: llm.RoleUser, Content: "go"}}}, func(d llm.Delta) {
		if n++; n == 3 {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) || llm.CodeOf(err) != "" {
		t.Errorf("cancel mid-stream: %v after %d deltas", err, n)
	}
}
