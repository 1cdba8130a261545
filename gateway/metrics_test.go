package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/parleyhq/parley/internal/testkit"
)

// scrape reads /metrics into name{labels} → value.
func scrape(t *testing.T, s *stack) map[string]float64 {
	t.Helper()
	status, body := s.do("GET", "/metrics", "", nil)
	if status != 200 {
		t.Fatalf("/metrics: %d %s", status, body)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

// TestMetrics checks that /metrics, in Prometheus text format, counts
// what one chat turn did.
func TestMetrics(t *testing.T) {
	t.Parallel()
	s := newStack(t, stackOpts{})
	s.upstream.Push(testkit.TextReply("four delta reply", 4))
	c := s.dial("")
	id := create(t, c, nil)
	send(t, c, id, "go")
	c.Terminal(id, 3)
	c.SendRaw([]byte("{not json"))
	c.Until(func(f testkit.Frame) bool { return f.Type == "error" })

	m := scrape(t, s)
	for name, want := range map[string]float64{
		"parley_websockets_open":                          1,
		"parley_websockets_opened_total":                  1,
		"parley_client_frames_total":                      3,
		"parley_client_bad_frames_total":                  1,
		"parley_sessions_active":                          1,
		"parley_generations_running":                      0,
		`parley_generations_ended_total{how="completed"}`: 1,
		`parley_generations_ended_total{how="failed"}`:    0,
		"parley_deltas_total":                             4,
		"parley_delta_bytes_total":                        float64(len("four delta reply")),
	} {
		if got, ok := m[name]; !ok || got != want {
			t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
		}
	}
	// Every event in the log was counted as written (chunks depend on
	// timing, so count them in the log itself).
	evs, _, err := s.nats.Store(t).Load(context.Background(), id, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := m["parley_eventlog_append_events_total"]; got != float64(len(evs)) || len(evs) < 4 {
		t.Errorf("append events %v, the log has %d", got, len(evs))
	}
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "parley_eventlog_append_seconds_total"} {
		if _, ok := m[name]; !ok {
			t.Errorf("%s missing", name)
		}
	}
}
