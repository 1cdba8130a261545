package loadgen

import (
	"encoding/json"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

func TestBucketRangeHoldsItsValues(t *testing.T) {
	t.Parallel()
	for _, v := range []uint64{0, 1, 127, 128, 129, 255, 256, 257, 1000, 1 << 20, 1<<20 + 12345, 1<<40 - 1, histMaxVal} {
		i := bucketOf(v)
		lo, hi := bucketRange(i)
		if v < lo || v > hi {
			t.Errorf("value %d in bucket %d [%d, %d]", v, i, lo, hi)
		}
		if i >= histBuckets {
			t.Errorf("value %d: bucket %d out of %d", v, i, histBuckets)
		}
		if width := hi - lo + 1; width > 1 && float64(width)/float64(lo) > 1.0/histSub+1e-12 {
			t.Errorf("bucket %d [%d, %d]: width %d is over 1/%d of its bound", i, lo, hi, width, histSub)
		}
	}
	// Buckets tile the range: each starts just after the previous one.
	for i := 1; i < histBuckets; i++ {
		_, prevHi := bucketRange(i - 1)
		lo, _ := bucketRange(i)
		if lo != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, previous ends at %d", i, lo, prevHi)
		}
	}
}

func TestQuantiles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		samples func() []time.Duration
		q       float64
		want    time.Duration
	}{
		{"one sample", func() []time.Duration { return []time.Duration{42 * time.Millisecond} }, 0.5, 42 * time.Millisecond},
		{"uniform p50", uniform(1, 10000, time.Microsecond), 0.50, 5000 * time.Microsecond},
		{"uniform p99", uniform(1, 10000, time.Microsecond), 0.99, 9900 * time.Microsecond},
		{"uniform p999", uniform(1, 10000, time.Microsecond), 0.999, 9990 * time.Microsecond},
		{"uniform p100", uniform(1, 10000, time.Microsecond), 1, 10000 * time.Microsecond},
		{"small exact values", uniform(0, 99, time.Nanosecond), 0.5, 49 * time.Nanosecond},
		{"outlier tail", func() []time.Duration {
			s := make([]time.Duration, 0, 1000)
			for range 990 {
				s = append(s, time.Millisecond)
			}
			for range 10 {
				s = append(s, time.Second)
			}
			return s
		}, 0.999, time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var h Histogram
			for _, d := range tt.samples() {
				h.Record(d)
			}
			got := h.Snapshot().Quantile(tt.q)
			if !within(got, tt.want, 0.01) {
				t.Errorf("q%.3f = %v, want %v ±1%%", tt.q, got, tt.want)
			}
		})
	}
}

func TestEmptyAndClamped(t *testing.T) {
	t.Parallel()
	var h Histogram
	s := h.Snapshot()
	if s.Quantile(0.99) != 0 || s.Mean() != 0 || s.Summary().Count != 0 {
		t.Errorf("empty histogram: %+v", s.Summary())
	}
	h.Record(-time.Second)
	h.Record(100 * time.Hour)
	s = h.Snapshot()
	if s.Min != 0 || s.Max != histMaxVal || s.Count != 2 {
		t.Errorf("clamping: min %d max %d count %d", s.Min, s.Max, s.Count)
	}
}

func TestMergeEqualsRecordingTogether(t *testing.T) {
	t.Parallel()
	rng := rand.New(rand.NewPCG(1, 2))
	var a, b, all Histogram
	for i := range 20000 {
		d := time.Duration(rng.ExpFloat64() * float64(5*time.Millisecond))
		all.Record(d)
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	got := a.Snapshot()
	got.Merge(b.Snapshot())
	got.Merge(nil)
	got.Merge(&HistSnapshot{})
	want := all.Snapshot()
	if got.Count != want.Count || got.Sum != want.Sum || got.Min != want.Min || got.Max != want.Max {
		t.Fatalf("merged totals %d/%d/%d/%d, want %d/%d/%d/%d", got.Count, got.Sum, got.Min, got.Max, want.Count, want.Sum, want.Min, want.Max)
	}
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		if got.Quantile(q) != want.Quantile(q) {
			t.Errorf("q%v: merged %v, together %v", q, got.Quantile(q), want.Quantile(q))
		}
	}
	// Into an empty snapshot, and through JSON as worker processes send it.
	var empty HistSnapshot
	empty.Merge(want)
	b2, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	var back HistSnapshot
	if err := json.Unmarshal(b2, &back); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*HistSnapshot{&empty, &back} {
		if s.Count != want.Count || s.Quantile(0.99) != want.Quantile(0.99) {
			t.Errorf("copy: count %d p99 %v, want %d %v", s.Count, s.Quantile(0.99), want.Count, want.Quantile(0.99))
		}
	}
}

func TestRecordConcurrently(t *testing.T) {
	t.Parallel()
	var h Histogram
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 1000 {
				h.Record(time.Duration(g*1000+i+1) * time.Microsecond)
			}
		}()
	}
	wg.Wait()
	s := h.Snapshot()
	if s.Count != 8000 || s.Min != int64(time.Microsecond) || s.Max != int64(8000*time.Microsecond) {
		t.Errorf("count %d min %d max %d", s.Count, s.Min, s.Max)
	}
}

func uniform(from, to int, unit time.Duration) func() []time.Duration {
	return func() []time.Duration {
		s := make([]time.Duration, 0, to-from+1)
		for v := from; v <= to; v++ {
			s = append(s, time.Duration(v)*unit)
		}
		return s
	}
}

func within(got, want time.Duration, rel float64) bool {
	diff := float64(got - want)
	if diff < 0 {
		diff = -diff
	}
	return diff <= rel*float64(want)+1
}
