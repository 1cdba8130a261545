package sim_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/llm"
	"github.com/parleyhq/parley/llm/sim"
)

// TestMain fails the package if a test leaves goroutines behind: Stream
// runs on its caller's goroutine and must start none of its own.
func TestMain(m *testing.M) {
	before := runtime.NumGoroutine()
	code := m.Run()
	if code == 0 {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<20)
			fmt.Fprintf(os.Stderr, "leaked goroutines: %d at start, %d at end\n%s\n", before, n, buf[:runtime.Stack(buf, true)])
			code = 1
		}
	}
	os.Exit(code)
}

// unpaced sends every token at once: for tests about content, not time.
var unpaced = sim.Config{TokensPerSecond: math.Inf(1)}

func newSim(tb testing.TB, cfg sim.Config) *sim.Provider {
	tb.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testkit.Logger(tb)
	}
	p, err := sim.New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

func ask(prompt string) llm.Request {
	return llm.Request{Model: "sim", Messages: []llm.Message{{Role: llm.RoleUser, Content: prompt}}}
}

// played is what one Stream call delivered.
type played struct {
	deltas []string
	res    llm.Result
	err    error
}

func (r played) text() string { return strings.Join(r.deltas, "") }

func play(ctx context.Context, p *sim.Provider, req llm.Request) played {
	var r played
	r.res, r.err = p.Stream(ctx, req, func(d llm.Delta) {
		if d.Thinking != "" {
			panic("sim sent thinking text")
		}
		r.deltas = append(r.deltas, d.Text)
	})
	return r
}

// mustPlay is play that fails the test on an error.
func mustPlay(tb testing.TB, p *sim.Provider, req llm.Request) played {
	tb.Helper()
	r := play(context.Background(), p, req)
	if r.err != nil {
		tb.Fatalf("Stream: %v", r.err)
	}
	return r
}

func TestNameCheckModels(t *testing.T) {
	t.Parallel()
	p := newSim(t, sim.Config{})
	if p.Name() != "sim" {
		t.Errorf("Name() = %q, want sim", p.Name())
	}
	if err := p.Check(context.Background()); err != nil {
		t.Errorf("Check = %v", err)
	}
	models, err := p.Models(context.Background())
	if err != nil || !slices.Equal(models, []llm.ModelInfo{{Name: "sim", ContextLength: sim.DefaultContextLength}}) {
		t.Errorf("Models = %v, %v; want [sim %d]", models, err, sim.DefaultContextLength)
	}
	cfg := p.Config()
	if cfg.TTFT != 0 || cfg.TokensPerSecond != sim.DefaultTokensPerSecond || cfg.ReplyTokens != sim.DefaultReplyTokens {
		t.Errorf("defaults: %+v", cfg)
	}

	p = newSim(t, sim.Config{Models: []string{"llama3.2", "demo:7b"}, ContextLength: 4096})
	models, _ = p.Models(context.Background())
	want := []llm.ModelInfo{{Name: "llama3.2", ContextLength: 4096}, {Name: "demo:7b", ContextLength: 4096}}
	if !slices.Equal(models, want) {
		t.Errorf("Models = %v, want %v", models, want)
	}
	models[0].Name = "changed"
	if again, _ := p.Models(context.Background()); again[0].Name != "llama3.2" {
		t.Errorf("Models returned its own slice: a caller changed it to %v", again)
	}
	if n, err := p.ContextLength(context.Background(), "llama3.2:latest"); n != 4096 || err != nil {
		t.Errorf("ContextLength(llama3.2:latest) = %d, %v", n, err)
	}
	if _, err := p.ContextLength(context.Background(), "gpt-4o"); !errors.Is(err, sim.ErrModelNotFound) {
		t.Errorf("ContextLength(gpt-4o) error = %v, want ErrModelNotFound", err)
	}
}

func TestNewRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  sim.Config
		want string
	}{
		{"negative ttft", sim.Config{TTFT: -time.Second}, "TTFT"},
		{"negative rate", sim.Config{TokensPerSecond: -1}, "TokensPerSecond"},
		{"NaN rate", sim.Config{TokensPerSecond: math.NaN()}, "TokensPerSecond"},
		{"absurd rate", sim.Config{TokensPerSecond: 1e12}, "too high"},
		{"negative reply", sim.Config{ReplyTokens: -1}, "ReplyTokens"},
		{"negative context", sim.Config{ContextLength: -1}, "ContextLength"},
		{"empty model", sim.Config{Models: []string{"sim", ""}}, "empty name"},
		{"bad fault", sim.Config{Faults: sim.Faults{Cut: sim.Select{Rate: 2}}}, "cut_rate"},
		{"pause without length", sim.Config{Faults: sim.Faults{Pause: sim.Select{Every: 1}}}, "pause"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := sim.New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New(%+v) = %v, want an error about %s", tt.cfg, err, tt.want)
			}
		})
	}
}

func TestBadRequests(t *testing.T) {
	t.Parallel()
	p := newSim(t, unpaced)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name     string
		ctx      context.Context
		req      llm.Request
		wantCode string
		wantIs   error
	}{
		{"no model", context.Background(), llm.Request{Messages: ask("x").Messages}, "", nil},
		{"no messages", context.Background(), llm.Request{Model: "sim"}, "", nil},
		{"unknown model", context.Background(), llm.Request{Model: "llama3.2", Messages: ask("x").Messages}, llm.CodeUpstreamError, sim.ErrModelNotFound},
		{"cancelled before", cancelled, ask("x"), "", context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := play(tt.ctx, p, tt.req)
			if r.err == nil || len(r.deltas) > 0 {
				t.Fatalf("Stream = %d deltas, %v; want an error and nothing streamed", len(r.deltas), r.err)
			}
			if got := llm.CodeOf(r.err); got != tt.wantCode {
				t.Errorf("code %q, want %q (%v)", got, tt.wantCode, r.err)
			}
			if tt.wantIs != nil && !errors.Is(r.err, tt.wantIs) {
				t.Errorf("error %v is not %v", r.err, tt.wantIs)
			}
			if llm.IsRetryable(r.err) {
				t.Errorf("error %v is retryable", r.err)
			}
		})
	}
	// The message reads like a real server's.
	r := play(context.Background(), p, llm.Request{Model: "llama3.2", Messages: ask("x").Messages})
	if !strings.Contains(r.err.Error(), `model "llama3.2" not found`) {
		t.Errorf("unknown model error %q", r.err)
	}
}

func TestDeterministic(t *testing.T) {
	t.Parallel()
	cfg := unpaced
	cfg.Models = []string{"sim", "other"}
	p1, p2 := newSim(t, cfg), newSim(t, cfg)
	withSystem := ask("hello")
	withSystem.Messages = append([]llm.Message{{Role: llm.RoleSystem, Content: "be brief"}}, withSystem.Messages...)
	otherModel := ask("hello")
	otherModel.Model = "other"
	latest := ask("hello")
	latest.Model = "SIM:latest"
	asRole := ask("hello")
	asRole.Messages[0].Role = llm.RoleAssistant

	base := mustPlay(t, p1, ask("hello"))
	tests := []struct {
		name string
		req  llm.Request
		same bool
	}{
		{"same request, same provider", ask("hello"), true},
		{"same model by another spelling", latest, true},
		{"another prompt", ask("hello!"), false},
		{"a system message", withSystem, false},
		{"another model", otherModel, false},
		{"another role", asRole, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			for i, p := range []*sim.Provider{p1, p2} {
				got := mustPlay(t, p, tt.req)
				if tt.same != slices.Equal(got.deltas, base.deltas) {
					t.Errorf("provider %d: same deltas = %v, want %v\n got %q\nbase %q", i+1, !tt.same, tt.same, got.text(), base.text())
				}
				if !tt.same && got.text() == base.text() {
					t.Errorf("provider %d: same text for a different request: %q", i+1, got.text())
				}
			}
		})
	}
}

// wordLike is what a reply is made of: words, commas, sentence ends and
// paragraph breaks.
var wordLike = regexp.MustCompile(`^(?:\s?[\p{L}\p{So}\p{Sm}]+|[,.?!]|\n\n)+$`)

func TestReplyText(t *testing.T) {
	t.Parallel()
	p := newSim(t, unpaced)
	splits, multibyte := 0, 0
	for i := range 20 {
		r := mustPlay(t, p, ask(fmt.Sprintf("prompt %d", i)))
		text := r.text()
		if !utf8.ValidString(text) {
			t.Fatalf("reply %d is not valid UTF-8: %q", i, text)
		}
		if !wordLike.MatchString(text) {
			t.Errorf("reply %d is not word-like: %q", i, text)
		}
		if len(r.deltas) < sim.DefaultReplyTokens || len(r.deltas) > sim.DefaultReplyTokens+1 {
			t.Errorf("reply %d: %d deltas for %d tokens", i, len(r.deltas), sim.DefaultReplyTokens)
		}
		if !strings.HasSuffix(text, ".") && !strings.HasSuffix(text, "🙂") {
			t.Errorf("a completed reply ends mid-sentence: %q", text[max(0, len(text)-20):])
		}
		if utf8.RuneCountInString(text) != len(text) {
			multibyte++
		}
		// Reassembled with UTF8Carry, every piece is whole and they join
		// to the same text.
		var c llm.UTF8Carry
		var b strings.Builder
		for _, d := range r.deltas {
			if d == "" {
				t.Errorf("reply %d has an empty delta", i)
			}
			if !utf8.ValidString(d) {
				splits++
			}
			piece := c.Push(d)
			if !utf8.ValidString(piece) {
				t.Fatalf("UTF8Carry gave an invalid piece %q", piece)
			}
			b.WriteString(piece)
		}
		if tail := c.Flush(); tail != "" {
			t.Errorf("reply %d ends inside a character: %q", i, tail)
		}
		if b.String() != text {
			t.Errorf("reassembled %q, want %q", b.String(), text)
		}
	}
	if multibyte < 15 || splits < 10 {
		t.Errorf("in 20 replies: %d with multi-byte characters, %d split deltas; want most and many", multibyte, splits)
	}
}

func TestLengthAndUsage(t *testing.T) {
	t.Parallel()
	p := newSim(t, sim.Config{TokensPerSecond: math.Inf(1), ReplyTokens: 40})
	full := mustPlay(t, p, ask("count me"))
	prompt := full.res.Usage.PromptTokens
	tests := []struct {
		maxTokens  int
		wantTokens int
		wantReason string
	}{
		{0, 40, "stop"},
		{1, 1, "length"},
		{10, 10, "length"},
		{39, 39, "length"},
		{40, 40, "stop"},
		{1000, 40, "stop"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.maxTokens), func(t *testing.T) {
			t.Parallel()
			req := ask("count me")
			req.MaxTokens = tt.maxTokens
			r := mustPlay(t, p, req)
			if r.res.DoneReason != tt.wantReason || r.res.Usage.CompletionTokens != tt.wantTokens || r.res.Usage.PromptTokens != prompt {
				t.Errorf("result %+v, want reason %s, %d completion tokens, %d prompt tokens", r.res, tt.wantReason, tt.wantTokens, prompt)
			}
			if n := len(r.deltas); n < tt.wantTokens || n > tt.wantTokens+1 {
				t.Errorf("%d deltas for %d tokens", n, tt.wantTokens)
			}
			if tt.wantReason == "length" && !strings.HasPrefix(full.text(), r.text()) {
				t.Errorf("a shorter reply is not a prefix of the full one:\n%q\n%q", r.text(), full.text())
			}
			if !utf8.ValidString(r.text()) {
				t.Errorf("reply ends inside a character: %q", r.text())
			}
		})
	}

	// The prompt estimate grows with the prompt and the messages.
	long := ask(strings.Repeat("word ", 400))
	two := ask("count me")
	two.Messages = append(two.Messages, llm.Message{Role: llm.RoleAssistant, Content: "ok"})
	pl, pt := mustPlay(t, p, long).res.Usage.PromptTokens, mustPlay(t, p, two).res.Usage.PromptTokens
	if pl < 450 || pl > 550 || pt <= prompt {
		t.Errorf("prompt tokens: %d for 2000 characters (want about 500), %d for two messages vs %d for one", pl, pt, prompt)
	}
}

// TestTiming runs a stream on a fake clock: the first token waits for
// TTFT, the others come one per 1/TokensPerSecond on an absolute schedule,
// a small delay is caught up and a long stall is not burst out.
func TestTiming(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	p := newSim(t, sim.Config{TTFT: time.Second, TokensPerSecond: 10, ReplyTokens: 30, Clock: clock})
	var tokens atomic.Int64
	done := make(chan struct{})
	var res llm.Result
	var err error
	go func() {
		defer close(done)
		res, err = p.Stream(context.Background(), ask("tick"), func(llm.Delta) { tokens.Add(1) })
	}()
	// Deltas can exceed tokens by one at the very end (the tail of a split
	// last token); this test stops before that.
	expect := func(what string, want int64) {
		t.Helper()
		if got := tokens.Load(); got != want {
			t.Fatalf("%s: %d tokens, want %d", what, got, want)
		}
	}

	if d := clock.WaitArmed(t, 0, done); d != time.Second {
		t.Fatalf("first wait %v, want TTFT 1s", d)
	}
	clock.Advance(999 * time.Millisecond)
	expect("before TTFT", 0)
	arms := clock.Arms()
	clock.Advance(time.Millisecond)
	if d := clock.WaitArmed(t, arms, done); d != 100*time.Millisecond {
		t.Fatalf("wait after the first token %v, want 100ms", d)
	}
	expect("at TTFT", 1)
	for i := 2; i <= 10; i++ {
		arms = clock.Arms()
		clock.Advance(100 * time.Millisecond)
		clock.WaitArmed(t, arms, done)
		expect(fmt.Sprintf("%d00ms after TTFT", i-1), int64(i))
	}
	// 50ms late: the token goes out and the next keeps to the schedule.
	arms = clock.Arms()
	clock.Advance(150 * time.Millisecond)
	if d := clock.WaitArmed(t, arms, done); d != 50*time.Millisecond {
		t.Fatalf("after a 50ms delay the next token waits %v, want 50ms (catch up)", d)
	}
	expect("after a small delay", 11)
	// A 5s stall: one token, then the schedule restarts from now.
	arms = clock.Arms()
	clock.Advance(5 * time.Second)
	if d := clock.WaitArmed(t, arms, done); d != 100*time.Millisecond {
		t.Fatalf("after a stall the next token waits %v, want 100ms (no burst)", d)
	}
	expect("after a stall", 12)
	for {
		arms = clock.Arms()
		clock.Advance(100 * time.Millisecond)
		clock.WaitArmed(t, arms, done)
		select {
		case <-done:
			if err != nil || res.Usage.CompletionTokens != 30 || res.DoneReason != "stop" {
				t.Fatalf("Stream = %+v, %v", res, err)
			}
			return
		default:
		}
	}
}

func TestUnpacedUsesNoTimer(t *testing.T) {
	t.Parallel()
	clock := newFakeClock()
	p := newSim(t, sim.Config{TokensPerSecond: math.Inf(1), ReplyTokens: 500, Clock: clock})
	mustPlay(t, p, ask("fast"))
	if clock.Arms() != 0 {
		t.Errorf("an unpaced stream with no TTFT armed a timer %d times", clock.Arms())
	}
	// A paced stream uses one timer for all its waits.
	p = newSim(t, sim.Config{TTFT: time.Millisecond, TokensPerSecond: 1000, ReplyTokens: 20, Clock: clock})
	done := make(chan struct{})
	go func() {
		defer close(done)
		mustPlay(t, p, ask("paced"))
	}()
	for {
		arms := clock.Arms()
		clock.Advance(time.Millisecond)
		clock.WaitArmed(t, arms, done)
		select {
		case <-done:
			clock.mu.Lock()
			n := len(clock.timers)
			clock.mu.Unlock()
			if n != 1 {
				t.Errorf("a 20-token stream made %d timers, want 1", n)
			}
			return
		default:
		}
	}
}

// TestCancel cancels streams while they wait for their first token, sit
// in a pause, or stream: each returns ctx.Err() at once and sends nothing
// more. (TestMain checks that no goroutine outlives the tests.)
func TestCancel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		cfg    sim.Config
		before int // deltas to wait for before cancelling
	}{
		{"waiting for the first token", sim.Config{TTFT: time.Hour}, 0},
		{"in a pause", sim.Config{TokensPerSecond: 1000, Faults: sim.Faults{Pause: sim.Select{Every: 1}, PauseAfter: 3, PauseFor: time.Hour}}, 3},
		{"streaming", sim.Config{TokensPerSecond: 200, ReplyTokens: 100000}, 5},
		{"unpaced", sim.Config{TokensPerSecond: math.Inf(1), ReplyTokens: math.MaxInt32}, 1000},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := newSim(t, tt.cfg)
			const streams = 20
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var wg sync.WaitGroup
			var started sync.WaitGroup
			counts := make([]atomic.Int64, streams)
			errs := make([]error, streams)
			returned := make([]time.Time, streams)
			for i := range streams {
				wg.Add(1)
				started.Add(1)
				go func() {
					defer wg.Done()
					once := tt.before == 0
					if once {
						started.Done()
					}
					_, errs[i] = p.Stream(ctx, ask(fmt.Sprint("cancel me ", i)), func(llm.Delta) {
						if counts[i].Add(1) == int64(tt.before) && !once {
							once = true
							started.Done()
						}
					})
					returned[i] = time.Now()
				}()
			}
			started.Wait()
			if tt.before == 0 {
				time.Sleep(10 * time.Millisecond) // let them reach the wait
			}
			at := time.Now()
			cancel()
			wg.Wait()
			var after []int64
			for i := range streams {
				if !errors.Is(errs[i], context.Canceled) {
					t.Errorf("stream %d returned %v, want context.Canceled", i, errs[i])
				}
				if took := returned[i].Sub(at); took > time.Second {
					t.Errorf("stream %d returned %v after the cancel", i, took)
				}
				after = append(after, counts[i].Load())
			}
			time.Sleep(20 * time.Millisecond)
			for i := range streams {
				if counts[i].Load() != after[i] {
					t.Errorf("stream %d sent deltas after it returned", i)
				}
			}
		})
	}
}

func TestFaults(t *testing.T) {
	t.Parallel()
	// reply is the text of the first maxTokens tokens (0: all) without faults.
	reply := func(maxTokens int) string {
		req := ask("fault")
		req.MaxTokens = maxTokens
		return mustPlay(t, newSim(t, sim.Config{TokensPerSecond: math.Inf(1), ReplyTokens: 20}), req).text()
	}
	tests := []struct {
		name       string
		spec       string
		requests   int
		wantFail   []int // 1-based request numbers that fail
		code       string
		retryable  bool
		retry      time.Duration
		incomplete bool
		partial    int // tokens delivered before the failure
	}{
		{name: "none", spec: "none", requests: 5},
		{name: "unavailable every 3rd", spec: "unavailable_every=3", requests: 7, wantFail: []int{3, 6},
			code: llm.CodeUpstreamUnavailable, retryable: true},
		{name: "unavailable with retry after", spec: "unavailable_every=1,retry_after=2s", requests: 2, wantFail: []int{1, 2},
			code: llm.CodeUpstreamUnavailable, retryable: true, retry: 2 * time.Second},
		{name: "cut every stream", spec: "cut_after=5", requests: 2, wantFail: []int{1, 2},
			code: llm.CodeUpstreamError, incomplete: true, partial: 5},
		{name: "cut before output", spec: "cut_after=0", requests: 1, wantFail: []int{1},
			code: llm.CodeUpstreamError, incomplete: true},
		{name: "cut every 2nd", spec: "cut_after=7,cut_every=2", requests: 4, wantFail: []int{2, 4},
			code: llm.CodeUpstreamError, incomplete: true, partial: 7},
		{name: "cut beyond the reply", spec: "cut_after=20", requests: 2},
		{name: "error mid-stream", spec: "error_after=12", requests: 1, wantFail: []int{1},
			code: llm.CodeUpstreamError, partial: 12},
		{name: "error before output is retryable", spec: "error_after=0,error_every=2", requests: 2, wantFail: []int{2},
			code: llm.CodeUpstreamError, retryable: true},
		{name: "cut wins a tie", spec: "cut_after=4,error_after=4", requests: 1, wantFail: []int{1},
			code: llm.CodeUpstreamError, incomplete: true, partial: 4},
		{name: "earlier wins", spec: "cut_after=9,error_after=3", requests: 1, wantFail: []int{1},
			code: llm.CodeUpstreamError, partial: 3},
		{name: "unavailable wins", spec: "unavailable_every=1,cut_after=3", requests: 1, wantFail: []int{1},
			code: llm.CodeUpstreamUnavailable, retryable: true},
		{name: "a pause alone fails nothing", spec: "pause_after=2,pause=1ms", requests: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			faults, err := sim.ParseFaults(tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			p := newSim(t, sim.Config{TokensPerSecond: math.Inf(1), ReplyTokens: 20, Faults: faults})
			// A request for an unknown model is refused and not counted.
			if r := play(context.Background(), p, llm.Request{Model: "nope", Messages: ask("x").Messages}); !errors.Is(r.err, sim.ErrModelNotFound) {
				t.Fatalf("unknown model: %v", r.err)
			}
			full := reply(0)
			for n := 1; n <= tt.requests; n++ {
				r := play(context.Background(), p, ask("fault"))
				if !slices.Contains(tt.wantFail, n) {
					if r.err != nil || r.text() != full {
						t.Errorf("request %d: %v, text %q; want the full reply", n, r.err, r.text())
					}
					continue
				}
				if r.err == nil {
					t.Fatalf("request %d succeeded, want it to fail", n)
				}
				var e *llm.Error
				if !errors.As(r.err, &e) {
					t.Fatalf("request %d: %T %v, want *llm.Error", n, r.err, r.err)
				}
				if e.Code != tt.code || e.Retryable != tt.retryable || e.RetryAfter != tt.retry ||
					errors.Is(r.err, llm.ErrIncomplete) != tt.incomplete || !errors.Is(r.err, sim.ErrInjected) {
					t.Errorf("request %d: %+v (incomplete %v); want code %s, retryable %v, retry after %v, incomplete %v, injected",
						n, e, errors.Is(r.err, llm.ErrIncomplete), tt.code, tt.retryable, tt.retry, tt.incomplete)
				}
				if !strings.Contains(e.Message, "injected") {
					t.Errorf("message %q does not say the fault was injected", e.Message)
				}
				want := ""
				if tt.partial > 0 {
					want = reply(tt.partial)
				}
				if r.text() != want {
					t.Errorf("request %d delivered %q before failing, want %q (the first %d tokens)", n, r.text(), want, tt.partial)
				}
				if !utf8.ValidString(r.text()) {
					t.Errorf("request %d: partial text ends inside a character", n)
				}
			}
		})
	}
}

// TestFaultRate: a rate chooses about that fraction, the same requests on
// every Provider, and different requests for different faults.
func TestFaultRate(t *testing.T) {
	t.Parallel()
	failures := func(spec string) []int {
		f, err := sim.ParseFaults(spec)
		if err != nil {
			t.Fatal(err)
		}
		p := newSim(t, sim.Config{TokensPerSecond: math.Inf(1), ReplyTokens: 3, Faults: f})
		var failed []int
		for n := 1; n <= 1000; n++ {
			if err := play(context.Background(), p, ask("x")).err; err != nil {
				failed = append(failed, n)
			}
		}
		return failed
	}
	a, b := failures("unavailable_rate=0.2"), failures("unavailable_rate=0.2")
	if !slices.Equal(a, b) {
		t.Errorf("the same rate chose different requests on two providers")
	}
	if len(a) < 150 || len(a) > 250 {
		t.Errorf("unavailable_rate=0.2 failed %d of 1000 requests", len(a))
	}
	if c := failures("cut_after=0,cut_rate=0.2"); slices.Equal(a, c) {
		t.Errorf("two faults at the same rate chose the same requests")
	}
	if all := failures("error_after=1,error_rate=1"); len(all) != 1000 {
		t.Errorf("error_rate=1 failed %d of 1000", len(all))
	}
}

// TestPause: the chosen stream waits PauseFor on top of its usual gap
// after PauseAfter tokens.
func TestPause(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		after int
		gap   time.Duration // the wait before token after+1
	}{
		{"before the first token", 0, 200*time.Millisecond + 5*time.Second},
		{"after three tokens", 3, 100*time.Millisecond + 5*time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock := newFakeClock()
			faults := sim.Faults{Pause: sim.Select{Every: 1}, PauseAfter: tt.after, PauseFor: 5 * time.Second}
			p := newSim(t, sim.Config{TTFT: 200 * time.Millisecond, TokensPerSecond: 10, ReplyTokens: 6, Clock: clock, Faults: faults})
			var tokens atomic.Int64
			done := make(chan struct{})
			go func() {
				defer close(done)
				if _, err := p.Stream(context.Background(), ask("pause"), func(llm.Delta) { tokens.Add(1) }); err != nil {
					t.Errorf("Stream: %v", err)
				}
			}()
			arms := 0
			for {
				d := clock.WaitArmed(t, arms, done)
				select {
				case <-done:
					return
				default:
				}
				n := int(tokens.Load())
				want := 100 * time.Millisecond
				switch {
				case n == tt.after:
					want = tt.gap
				case n == 0:
					want = 200 * time.Millisecond
				}
				if d != want {
					t.Fatalf("after %d tokens the stream waits %v, want %v", n, d, want)
				}
				arms = clock.Arms()
				clock.Advance(d)
			}
		})
	}
}

// TestFaultsEndOnWholeCharacters cuts and fails a reply after every
// possible number of tokens: what was delivered is always exactly the
// first K tokens, never half a character, even where token K was split.
func TestFaultsEndOnWholeCharacters(t *testing.T) {
	t.Parallel()
	const reply = 60
	clean := newSim(t, sim.Config{TokensPerSecond: math.Inf(1), ReplyTokens: reply})
	for _, fault := range []string{"cut_after", "error_after"} {
		t.Run(fault, func(t *testing.T) {
			t.Parallel()
			splitBefore := 0 // faults that came right after a split token
			for k := 1; k < reply; k++ {
				f, err := sim.ParseFaults(fmt.Sprintf("%s=%d", fault, k))
				if err != nil {
					t.Fatal(err)
				}
				p := newSim(t, sim.Config{TokensPerSecond: math.Inf(1), ReplyTokens: reply, Faults: f})
				req := ask("split me")
				r := play(context.Background(), p, req)
				if r.err == nil {
					t.Fatalf("%s=%d: no error", fault, k)
				}
				req.MaxTokens = k
				want := mustPlay(t, clean, req)
				if r.text() != want.text() {
					t.Errorf("%s=%d delivered %q, want the first %d tokens %q", fault, k, r.text(), k, want.text())
				}
				if len(want.deltas) > k {
					splitBefore++
				}
			}
			if splitBefore == 0 {
				t.Errorf("no fault came right after a split token; the test proves nothing")
			}
		})
	}
}

// TestCancelLeavesNothingRunning starts 200 paced streams, cancels them
// mid-reply and checks that the goroutine count is back to where it was.
// It is not parallel on purpose: parallel tests are paused while it runs,
// so the count is its own.
func TestCancelLeavesNothingRunning(t *testing.T) {
	p := newSim(t, sim.Config{TTFT: time.Millisecond, TokensPerSecond: 100, ReplyTokens: 100000})
	before := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const streams = 200
	var wg, streaming sync.WaitGroup
	var stray atomic.Int64 // deltas after Stream returned
	for i := range streams {
		wg.Add(1)
		streaming.Add(1)
		go func() {
			defer wg.Done()
			first, returned := true, false
			_, err := p.Stream(ctx, ask(fmt.Sprint("leak ", i)), func(llm.Delta) {
				if returned {
					stray.Add(1)
				}
				if first {
					first = false
					streaming.Done()
				}
			})
			returned = true
			if !errors.Is(err, context.Canceled) {
				t.Errorf("stream %d: %v, want context.Canceled", i, err)
			}
		}()
	}
	streaming.Wait()
	if n := runtime.NumGoroutine(); n < before+streams {
		t.Fatalf("%d goroutines while streaming, want at least %d", n, before+streams)
	}
	cancel()
	wg.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after cancelling, %d before", runtime.NumGoroutine(), before)
		}
		time.Sleep(time.Millisecond)
	}
	if stray.Load() != 0 {
		t.Errorf("%d deltas after Stream returned", stray.Load())
	}
}
