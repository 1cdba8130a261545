package openai_test

import (
	"bufio"
	"context"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/llm"
	"github.com/parleyhq/parley/llm/openai"
)

// cpuTime is the CPU time (user and system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// reportPerToken reports wall-clock and CPU time (of the whole process,
// the scripted server included) per token since cpu0.
func reportPerToken(b *testing.B, cpu0 time.Duration) {
	tokens := float64(b.N * benchTokens)
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/tokens, "ns/token")
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/tokens, "cpu-ns/token")
}

// benchTokens is the reply length of one benchmark request.
const benchTokens = 1000

// benchPieces are benchTokens token-sized pieces of text, ASCII and not.
func benchPieces() []string {
	words := []string{" the", " model", " streams", " tokens", ",", " é", " 世界", " 😀", "\n", " and"}
	pieces := make([]string, benchTokens)
	for i := range pieces {
		pieces[i] = words[i%len(words)]
	}
	return pieces
}

// BenchmarkStream measures the provider's overhead per token: a request to
// a ScriptedOpenAI (Ollama's /v1 format, usage asked for) that streams
// benchTokens chunks, each parsed and handed to a callback ("provider"),
// against the same request whose response body is only read line by line
// with a bufio.Scanner ("scanner"). Both go over loopback HTTP to the same
// server in the same run; the difference is the cost of SSE parsing, JSON
// decoding, the timeout watchdog and the callback.
func BenchmarkStream(b *testing.B) {
	script := testkit.TokenReply(0, benchPieces()...)
	up := testkit.NewScriptedOpenAI(b, testkit.ScriptedOpenAIConfig{Script: func(*testkit.ScriptedOpenAIRequest) testkit.Script { return script }})
	wantLen := len(strings.Join(benchPieces(), ""))
	ctx := context.Background()

	b.Run("provider", func(b *testing.B) {
		p := provider(b, up.URL(), openai.Config{})
		b.ReportAllocs()
		cpu0 := cpuTime()
		for b.Loop() {
			n := 0
			_, err := p.Stream(ctx, req, func(d llm.Delta) { n += len(d.Text) })
			if err != nil || n != wantLen {
				b.Fatalf("%d bytes, %v", n, err)
			}
		}
		reportPerToken(b, cpu0)
	})

	b.Run("scanner", func(b *testing.B) {
		client := &http.Client{}
		body := `{"model":"tiny","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}`
		b.ReportAllocs()
		cpu0 := cpuTime()
		for b.Loop() {
			r, _ := http.NewRequestWithContext(ctx, http.MethodPost, up.URL()+"/chat/completions", strings.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(r)
			if err != nil {
				b.Fatal(err)
			}
			sc := bufio.NewScanner(resp.Body)
			lines := 0
			for sc.Scan() {
				if len(sc.Bytes()) > 0 {
					lines++
				}
			}
			resp.Body.Close()
			if sc.Err() != nil || lines != benchTokens+3 { // + finish, usage, [DONE]
				b.Fatalf("%d lines, %v", lines, sc.Err())
			}
		}
		reportPerToken(b, cpu0)
	})
}
