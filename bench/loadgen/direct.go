package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// DirectConfig is a run of chats straight against an Ollama-protocol
// model server (/api/chat, streaming), the reference for the gateway's
// overhead on time to first token.
type DirectConfig struct {
	// URL is the model server's base URL, http://127.x.x.x:port. Only
	// loopback servers are accepted. Required.
	URL string
	// Model is the model asked for. Required.
	Model string
	// Chats is how many chats run at once. Zero value means 1.
	Chats int
	// Duration is how long new chats start (capped at MaxDuration). Zero
	// value means DefaultChatDuration.
	Duration time.Duration
	// Prompt is the user message. Zero value means DefaultPrompt.
	Prompt string
}

// DirectReport is what the direct chats saw.
type DirectReport struct {
	URL             string           `json:"url"`
	Chats           int64            `json:"chats"`
	Tokens          int64            `json:"tokens"`
	Seconds         float64          `json:"duration_s"`
	TokensPerSecond float64          `json:"tokens_per_s"`
	TTFT            *HistSnapshot    `json:"ttft"`
	ITL             *HistSnapshot    `json:"itl"`
	Errors          map[string]int64 `json:"errors,omitempty"`
}

// RunDirect runs cfg.Chats chat loops against the model server for
// cfg.Duration, one goroutine each (a handful: this measures latency, not
// scale).
func RunDirect(ctx context.Context, cfg DirectConfig) (*DirectReport, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Scheme != "http" {
		return nil, fmt.Errorf("loadgen: direct URL %q: want http://127.x.x.x:port", cfg.URL)
	}
	if err := checkLoopback(u.Host); err != nil {
		return nil, fmt.Errorf("loadgen: direct URL: %w", err)
	}
	if cfg.Model == "" {
		return nil, errors.New("loadgen: direct run needs a model")
	}
	cfg.Chats = max(cfg.Chats, 1)
	if cfg.Duration <= 0 {
		cfg.Duration = DefaultChatDuration
	}
	cfg.Duration = min(cfg.Duration, MaxDuration)
	if cfg.Prompt == "" {
		cfg.Prompt = DefaultPrompt
	}
	u.Host = dialHost(u.Host)
	endpoint := strings.TrimRight(u.String(), "/") + "/api/chat"
	body, _ := json.Marshal(map[string]any{
		"model":    cfg.Model,
		"messages": []map[string]string{{"role": "user", "content": cfg.Prompt}},
		"stream":   true,
	})
	tr := &http.Transport{MaxIdleConnsPerHost: cfg.Chats, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: DefaultChatTimeout}

	var ttft, itl Histogram
	var errs errCounter
	var mu sync.Mutex
	var chats, tokens int64
	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	start := time.Now()
	var wg sync.WaitGroup
	for range cfg.Chats {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for runCtx.Err() == nil {
				n, err := directChat(ctx, client, endpoint, body, &ttft, &itl)
				mu.Lock()
				tokens += int64(n)
				if err == nil {
					chats++
				}
				mu.Unlock()
				if err != nil {
					errs.add("direct:"+errKind(err), 1)
					_ = sleep(runCtx, 100*time.Millisecond)
				}
			}
		}()
	}
	wg.Wait()
	secs := cfg.Duration.Seconds()
	return &DirectReport{
		URL: cfg.URL, Chats: chats, Tokens: tokens, Seconds: time.Since(start).Seconds(),
		TokensPerSecond: float64(tokens) / secs,
		TTFT:            ttft.Snapshot(), ITL: itl.Snapshot(), Errors: errs.snapshot(),
	}, nil
}

// directChat runs one streamed chat and records its latencies. It
// returns the number of content records.
func directChat(ctx context.Context, client *http.Client, endpoint string, body []byte, ttft, itl *Histogram) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	t0 := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, resp.Body)
		return 0, fmt.Errorf("status %d", resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var rec struct {
		Message struct {
			Content string `json:"content"`
		} `json:"message"`
		Done  bool   `json:"done"`
		Error string `json:"error"`
	}
	n := 0
	var last time.Time
	for sc.Scan() {
		now := time.Now()
		rec.Message.Content, rec.Done, rec.Error = "", false, ""
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			return n, fmt.Errorf("bad record: %w", err)
		}
		if rec.Error != "" {
			return n, errors.New("upstream error")
		}
		if rec.Message.Content != "" {
			if n == 0 {
				ttft.Record(now.Sub(t0))
			} else {
				itl.Record(now.Sub(last))
			}
			last = now
			n++
		}
		if rec.Done {
			return n, nil
		}
	}
	if err := sc.Err(); err != nil {
		return n, err
	}
	return n, errors.New("stream ended without done")
}

func errKind(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	}
	s := err.Error()
	if i := strings.IndexByte(s, ':'); i > 0 && i < 24 {
		s = s[:i]
	}
	return strings.ReplaceAll(s, " ", "_")
}

// WriteText writes the direct report for people.
func (r *DirectReport) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "direct chats → %s: %d chats, %d tokens (%.0f/s) in %.1fs\n", r.URL, r.Chats, r.Tokens, r.TokensPerSecond, r.Seconds)
	fmt.Fprintf(&b, "  time to first token  %s\n", r.TTFT.Summary())
	fmt.Fprintf(&b, "  inter-token          %s\n", r.ITL.Summary())
	if len(r.Errors) > 0 {
		fmt.Fprintf(&b, "errors: %v\n", r.Errors)
	}
	_, err := io.WriteString(w, b.String())
	return err
}
