package openai_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/llm"
	"github.com/parleyhq/parley/llm/openai"
)

// benchTokens is the reply length of one benchmark request.
const benchTokens = 1000

// BenchmarkStream measures the provider's overhead per token: a request to
// a ScriptedOpenAI (Ollama's /v1 format, usage asked for) that streams
// benchTokens chunks, each parsed and handed to a callback ("provider"),
// against the same request whose response body is only read line by line
// with a bufio.Scanner ("scanner"). Both go over loopback HTTP to the same
// server in the same run; the difference is the cost of SSE parsing, JSON
// decoding, the timeout watchdog and the callback.
func BenchmarkStream(b *testing.B) {
	pieces := testkit.BenchPieces(benchTokens)
	script := testkit.TokenReply(0, pieces...)
	up := testkit.NewScriptedOpenAI(b, testkit.ScriptedOpenAIConfig{Script: func(*testkit.ScriptedOpenAIRequest) testkit.Script { return script }})
	wantLen := len(strings.Join(pieces, ""))
	ctx := context.Background()

	b.Run("provider", func(b *testing.B) {
		p := provider(b, up.URL(), openai.Config{})
		b.ReportAllocs()
		cpu0 := testkit.CPUTime()
		for b.Loop() {
			n := 0
			_, err := p.Stream(ctx, req, func(d llm.Delta) { n += len(d.Text) })
			if err != nil || n != wantLen {
				b.Fatalf("%d bytes, %v", n, err)
			}
		}
		testkit.ReportPerToken(b, benchTokens, cpu0)
	})

	b.Run("scanner", func(b *testing.B) {
		client := &http.Client{}
		body := `{"model":"tiny","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}`
		b.ReportAllocs()
		cpu0 := testkit.CPUTime()
		for b.Loop() {
			lines, err := testkit.PostAndScan(ctx, client, up.URL()+"/chat/completions", body)
			if err != nil || lines != benchTokens+3 { // + finish, usage, [DONE]
				b.Fatalf("%d lines, %v", lines, err)
			}
		}
		testkit.ReportPerToken(b, benchTokens, cpu0)
	})
}
