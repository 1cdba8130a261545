// Command ollamastub is a model server for load tests: it answers
// Ollama's /api/chat with a streamed reply of a set number of tokens at a
// set rate after a set time to first token, and /api/version, /api/tags
// and /api/show enough for Parley's start-up checks. It listens on
// loopback only.
//
//	go run ./bench/ollamastub -listen 127.0.0.1:11999 -tps 50 -tokens 100 -ttft 0
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ollamastub:", err)
		os.Exit(1)
	}
}

type stub struct {
	model  string
	tps    float64
	tokens int
	ttft   time.Duration
	token  string
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("ollamastub", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:11999", "address (loopback)")
	s := &stub{}
	fs.StringVar(&s.model, "model", "bench", "the one model it lists")
	fs.Float64Var(&s.tps, "tps", 50, "tokens per second of each reply")
	fs.IntVar(&s.tokens, "tokens", 100, "tokens per reply")
	fs.DurationVar(&s.ttft, "ttft", 0, "delay before the first token")
	fs.StringVar(&s.token, "token", "tok ", "text of each token")
	if err := fs.Parse(args); err != nil {
		return err
	}
	host, _, err := net.SplitHostPort(*listen)
	if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-listen %q: want a loopback address", *listen)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/chat", s.chat)
	mux.HandleFunc("/api/version", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{"version": "0.17.4"})
	})
	mux.HandleFunc("/api/tags", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{"models": []map[string]any{{"name": s.model + ":latest", "model": s.model + ":latest"}}})
	})
	mux.HandleFunc("POST /api/show", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{"model_info": map[string]any{"stub.context_length": 8192}})
	})
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	slog.Info("ollamastub listening", slog.String("addr", ln.Addr().String()), slog.Float64("tps", s.tps), slog.Int("tokens", s.tokens), slog.Duration("ttft", s.ttft))
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shut); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

type record struct {
	Model      string    `json:"model"`
	CreatedAt  time.Time `json:"created_at"`
	Message    message   `json:"message"`
	Done       bool      `json:"done"`
	DoneReason string    `json:"done_reason,omitempty"`
	TotalDur   int64     `json:"total_duration,omitempty"`
	PromptN    int       `json:"prompt_eval_count,omitempty"`
	EvalN      int       `json:"eval_count,omitempty"`
}

type message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// chat streams s.tokens records s.tps apart (the first after s.ttft), then
// the done record, as Ollama does.
func (s *stub) chat(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	var req struct {
		Model    string    `json:"model"`
		Messages []message `json:"messages"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	enc := json.NewEncoder(w)
	interval := time.Duration(float64(time.Second) / s.tps)
	next := start.Add(s.ttft)
	t := time.NewTimer(time.Until(next))
	defer t.Stop()
	for i := range s.tokens {
		select {
		case <-t.C:
		case <-r.Context().Done():
			return
		}
		_ = enc.Encode(record{Model: req.Model, CreatedAt: time.Now().UTC(), Message: message{Role: "assistant", Content: s.token}})
		if err := rc.Flush(); err != nil {
			return
		}
		if i < s.tokens-1 {
			next = next.Add(interval)
			t.Reset(time.Until(next))
		}
	}
	prompt := 0
	for _, m := range req.Messages {
		prompt += len(strings.Fields(m.Content))
	}
	_ = enc.Encode(record{Model: req.Model, CreatedAt: time.Now().UTC(), Message: message{Role: "assistant"}, Done: true,
		DoneReason: "stop", TotalDur: int64(time.Since(start)), PromptN: max(prompt, 1), EvalN: s.tokens})
	_ = rc.Flush()
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(v)
}
