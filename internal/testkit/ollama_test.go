package testkit

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ollama/ollama/api"
)

// TestRealOllamaChatStream checks the real Ollama from
// scripts/ollama-test-env.sh: a streaming /api/chat to the tiny model ends
// with a done record after non-empty text, and greedy decoding (top_k 1)
// makes the reply the same on every run.
func TestRealOllamaChatStream(t *testing.T) {
	base := RealOllama(t)
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("parse %q: %v", base, err)
	}
	client := api.NewClient(u, &http.Client{Timeout: 2 * time.Minute})

	chat := func() string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()

		stream := true
		req := &api.ChatRequest{
			Model:    TinyModel,
			Messages: []api.Message{{Role: "user", Content: "Say hello."}},
			Stream:   &stream,
		}
		var (
			text    strings.Builder
			records int
			last    api.ChatResponse
			done    bool
		)
		err := client.Chat(ctx, req, func(r api.ChatResponse) error {
			if done {
				t.Errorf("record %d after the done record: %+v", records, r)
			}
			records++
			text.WriteString(r.Message.Content)
			last, done = r, r.Done
			return nil
		})
		if err != nil {
			t.Fatalf("chat: %v", err)
		}
		if !done {
			t.Fatalf("stream of %d records ended without a done record (text %q)", records, text.String())
		}
		if last.DoneReason == "" {
			t.Errorf("done record has no done_reason: %+v", last)
		}
		if last.EvalCount == 0 {
			t.Errorf("done record has no eval_count: %+v", last)
		}
		if text.Len() == 0 {
			t.Fatalf("empty reply in %d records", records)
		}
		t.Logf("%d records, done_reason=%s, prompt_eval_count=%d, eval_count=%d, %d bytes of text",
			records, last.DoneReason, last.PromptEvalCount, last.EvalCount, text.Len())
		return text.String()
	}

	first := chat()
	second := chat()
	if first != second {
		t.Errorf("replies differ with greedy decoding:\nfirst:  %q\nsecond: %q", first, second)
	}
}
