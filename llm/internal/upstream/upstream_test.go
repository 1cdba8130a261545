package upstream

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 4, 6, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		headers map[string]string
		want    time.Duration
	}{
		{"none", nil, 0},
		{"seconds", map[string]string{"Retry-After": "7"}, 7 * time.Second},
		{"seconds with spaces", map[string]string{"Retry-After": " 12 "}, 12 * time.Second},
		{"fractional seconds", map[string]string{"Retry-After": "1.5"}, 1500 * time.Millisecond},
		{"zero", map[string]string{"Retry-After": "0"}, 0},
		{"negative", map[string]string{"Retry-After": "-3"}, 0},
		{"garbage", map[string]string{"Retry-After": "soon"}, 0},
		{"NaN", map[string]string{"Retry-After": "NaN"}, 0},
		{"http date", map[string]string{"Retry-After": now.Add(90 * time.Second).Format(http.TimeFormat)}, 90 * time.Second},
		{"rfc850 date", map[string]string{"Retry-After": now.Add(time.Minute).Format(time.RFC850)}, time.Minute},
		{"asctime date", map[string]string{"Retry-After": now.Add(2 * time.Minute).Format(time.ANSIC)}, 2 * time.Minute},
		{"date in the past", map[string]string{"Retry-After": now.Add(-time.Minute).Format(http.TimeFormat)}, 0},
		{"capped seconds", map[string]string{"Retry-After": "999999999"}, MaxRetryAfter},
		{"huge number", map[string]string{"Retry-After": "1e400"}, MaxRetryAfter},
		{"capped date", map[string]string{"Retry-After": now.Add(72 * time.Hour).Format(http.TimeFormat)}, MaxRetryAfter},
		{"ms wins", map[string]string{"Retry-After-Ms": "250", "Retry-After": "7"}, 250 * time.Millisecond},
		{"bad ms falls back", map[string]string{"Retry-After-Ms": "x", "Retry-After": "7"}, 7 * time.Second},
	}
	for _, tt := range tests {
		h := http.Header{}
		for k, v := range tt.headers {
			h.Set(k, v)
		}
		if got := RetryAfter(h, now); got != tt.want {
			t.Errorf("%s: RetryAfter(%v) = %v, want %v", tt.name, tt.headers, got, tt.want)
		}
	}
}

func TestApplyDefaults(t *testing.T) {
	t.Parallel()
	var z Timeouts
	if err := z.ApplyDefaults("p"); err != nil {
		t.Fatal(err)
	}
	if z != (Timeouts{DefaultConnectTimeout, DefaultFirstTokenTimeout, DefaultIdleTimeout, DefaultTotalTimeout}) {
		t.Errorf("defaults %+v", z)
	}
	if DefaultTotalTimeout < 100*time.Minute {
		t.Errorf("DefaultTotalTimeout %v, want at least 100 minutes", DefaultTotalTimeout)
	}
	set := Timeouts{Connect: 1, FirstToken: 2, Idle: 3, Total: 4}
	if err := set.ApplyDefaults("p"); err != nil || set != (Timeouts{1, 2, 3, 4}) {
		t.Errorf("set values changed: %+v %v", set, err)
	}
	for _, tt := range []struct {
		in   Timeouts
		want string
	}{
		{Timeouts{Idle: -1}, "openai: IdleTimeout is negative"},
		{Timeouts{FirstToken: time.Hour, Total: time.Minute}, "openai: TotalTimeout (1m0s) is less than FirstTokenTimeout (1h0m0s)"},
		{Timeouts{FirstToken: 200 * time.Minute}, "less than FirstTokenTimeout"},
	} {
		if err := tt.in.ApplyDefaults("openai"); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want %q", tt.in, err, tt.want)
		}
	}
}

var (
	errFirst = errors.New("first")
	errIdle  = errors.New("idle")
)

// TestWatchdog drives a watchdog with real timers: it fires the first-token
// cause when nothing comes, the idle cause after a gap, never while a record
// is being handled, and never after Stop.
func TestWatchdog(t *testing.T) {
	t.Parallel()
	const first, idle = 80 * time.Millisecond, 60 * time.Millisecond
	start := func() (*Watchdog, context.Context) {
		ctx, cancel := context.WithCancelCause(context.Background())
		t.Cleanup(func() { cancel(nil) })
		return StartWatchdog(first, idle, cancel, errFirst, errIdle), ctx
	}
	wait := func(ctx context.Context) error {
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(5 * time.Second):
			return nil
		}
	}

	t.Run("first token", func(t *testing.T) {
		t.Parallel()
		w, ctx := start()
		defer w.Stop()
		t0 := time.Now()
		if err := wait(ctx); err != errFirst {
			t.Fatalf("cause %v, want %v", err, errFirst)
		}
		if el := time.Since(t0); el < first {
			t.Errorf("fired after %v, before the first-token limit %v", el, first)
		}
	})
	t.Run("idle", func(t *testing.T) {
		t.Parallel()
		w, ctx := start()
		defer w.Stop()
		for range 5 { // records closer together than idle keep it quiet
			time.Sleep(idle / 3)
			w.Enter()
			w.Leave()
		}
		t0 := time.Now() // just after the last record
		if ctx.Err() != nil {
			t.Fatalf("fired while records arrived: %v", context.Cause(ctx))
		}
		if err := wait(ctx); err != errIdle {
			t.Fatalf("cause %v, want %v", err, errIdle)
		}
		// Timers never fire early; the margin is the time between the
		// watchdog's note of the last record and t0.
		if el := time.Since(t0); el < idle-time.Millisecond {
			t.Errorf("fired %v after the last record, idle limit %v", el, idle)
		}
	})
	t.Run("busy does not count", func(t *testing.T) {
		t.Parallel()
		w, ctx := start()
		defer w.Stop()
		w.Enter()
		time.Sleep(3 * idle) // a slow callback
		if ctx.Err() != nil {
			t.Fatalf("fired inside a record's handling: %v", context.Cause(ctx))
		}
		w.Leave()
		if err := wait(ctx); err != errIdle {
			t.Fatalf("cause %v, want %v", err, errIdle)
		}
	})
	t.Run("stop", func(t *testing.T) {
		t.Parallel()
		w, ctx := start()
		w.Stop()
		time.Sleep(2 * first)
		if ctx.Err() != nil {
			t.Fatalf("fired after Stop: %v", context.Cause(ctx))
		}
	})
}
