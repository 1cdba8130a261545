package loadgen

import (
	"encoding/json"
	"fmt"
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// Histogram geometry: values below 2^histSubBits are counted exactly; above,
// each power of two is split into 2^histSubBits linear sub-buckets, so a
// bucket's width is at most 1/128 of its lower bound (under 0.8% error), as
// in HdrHistogram with two significant digits. Values are nanoseconds and
// are clamped to 2^histMaxBits-1 (about 2.4 hours).
const (
	histSubBits = 7
	histSub     = 1 << histSubBits
	histMaxBits = 43
	histBuckets = (histMaxBits - histSubBits + 1) * histSub
	histMaxVal  = 1<<histMaxBits - 1
)

// Histogram is a log-linear histogram of durations. Record is lock-free and
// safe for concurrent use; a Histogram must not be copied after first use.
// The zero value is empty and ready.
type Histogram struct {
	counts [histBuckets]atomic.Uint64
	n      atomic.Uint64
	sum    atomic.Uint64 // nanoseconds; wraps only after ~584 years of samples
	min    atomic.Int64  // valid when n > 0; 0 means unset
	max    atomic.Int64
}

// bucketOf returns the bucket index of v (0 <= v <= histMaxVal).
func bucketOf(v uint64) int {
	if v < histSub {
		return int(v)
	}
	shift := bits.Len64(v) - histSubBits - 1
	return shift*histSub + int(v>>uint(shift))
}

// bucketRange returns the smallest and largest value counted in bucket i.
func bucketRange(i int) (lo, hi uint64) {
	if i < 2*histSub {
		return uint64(i), uint64(i)
	}
	shift := i/histSub - 1
	top := uint64(i - shift*histSub)
	return top << uint(shift), (top+1)<<uint(shift) - 1
}

// Record adds one sample. Negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	if v > histMaxVal {
		v = histMaxVal
	}
	h.counts[bucketOf(uint64(v))].Add(1)
	h.n.Add(1)
	h.sum.Add(uint64(v))
	// min is stored plus one so that the zero value means "unset".
	for {
		m := h.min.Load()
		if m != 0 && m-1 <= v {
			break
		}
		if h.min.CompareAndSwap(m, v+1) {
			break
		}
	}
	for {
		m := h.max.Load()
		if m >= v {
			break
		}
		if h.max.CompareAndSwap(m, v) {
			break
		}
	}
}

// Snapshot returns the histogram's current contents. Samples recorded
// while it runs may be partly included.
func (h *Histogram) Snapshot() *HistSnapshot {
	s := &HistSnapshot{}
	for i := range h.counts {
		if c := h.counts[i].Load(); c > 0 {
			s.Buckets = append(s.Buckets, [2]uint64{uint64(i), c})
			s.Count += c
		}
	}
	if s.Count > 0 {
		s.Sum = h.sum.Load()
		s.Min = max(h.min.Load()-1, 0)
		s.Max = h.max.Load()
	}
	return s
}

// HistSnapshot is a Histogram's contents at one time: what worker
// processes send to the coordinator and what the JSON report holds. It
// can be merged and queried; it is not safe for concurrent mutation.
type HistSnapshot struct {
	// Buckets holds [bucket index, count] for every non-empty bucket, in
	// increasing index order.
	Buckets [][2]uint64 `json:"buckets,omitempty"`
	Count   uint64      `json:"count"`
	Sum     uint64      `json:"sum_ns"`
	Min     int64       `json:"min_ns"`
	Max     int64       `json:"max_ns"`
}

// Merge adds o's samples to s.
func (s *HistSnapshot) Merge(o *HistSnapshot) {
	if o == nil || o.Count == 0 {
		return
	}
	if s.Count == 0 {
		s.Min, s.Max = o.Min, o.Max
	} else {
		s.Min = min(s.Min, o.Min)
		s.Max = max(s.Max, o.Max)
	}
	s.Count += o.Count
	s.Sum += o.Sum
	merged := make([][2]uint64, 0, max(len(s.Buckets), len(o.Buckets)))
	i, j := 0, 0
	for i < len(s.Buckets) || j < len(o.Buckets) {
		switch {
		case j == len(o.Buckets) || (i < len(s.Buckets) && s.Buckets[i][0] < o.Buckets[j][0]):
			merged = append(merged, s.Buckets[i])
			i++
		case i == len(s.Buckets) || o.Buckets[j][0] < s.Buckets[i][0]:
			merged = append(merged, o.Buckets[j])
			j++
		default:
			merged = append(merged, [2]uint64{s.Buckets[i][0], s.Buckets[i][1] + o.Buckets[j][1]})
			i++
			j++
		}
	}
	s.Buckets = merged
}

// Quantile returns the value at quantile q (0 < q <= 1): the sample of
// rank ceil(q·count), reported as the middle of its bucket and kept within
// the observed minimum and maximum. It is 0 for an empty histogram.
func (s *HistSnapshot) Quantile(q float64) time.Duration {
	if s == nil || s.Count == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(s.Count)))
	rank = min(max(rank, 1), s.Count)
	var seen uint64
	for _, b := range s.Buckets {
		seen += b[1]
		if seen >= rank {
			lo, hi := bucketRange(int(b[0]))
			v := int64(lo + (hi-lo)/2)
			return time.Duration(min(max(v, s.Min), s.Max))
		}
	}
	return time.Duration(s.Max)
}

// Mean is the average sample, 0 for an empty histogram.
func (s *HistSnapshot) Mean() time.Duration {
	if s == nil || s.Count == 0 {
		return 0
	}
	return time.Duration(s.Sum / s.Count)
}

// Summary is the percentiles a report shows, in milliseconds.
type Summary struct {
	Count uint64  `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p999_ms"`
	Max   float64 `json:"max_ms"`
}

// Summary computes the usual percentiles.
func (s *HistSnapshot) Summary() Summary {
	if s == nil {
		return Summary{}
	}
	return Summary{
		Count: s.Count,
		Mean:  ms(s.Mean()),
		P50:   ms(s.Quantile(0.50)),
		P90:   ms(s.Quantile(0.90)),
		P99:   ms(s.Quantile(0.99)),
		P999:  ms(s.Quantile(0.999)),
		Max:   ms(time.Duration(s.Max)),
	}
}

// MarshalJSON adds the summary next to the raw buckets, for readers of the
// JSON report.
func (s *HistSnapshot) MarshalJSON() ([]byte, error) {
	type raw HistSnapshot
	return json.Marshal(struct {
		Summary Summary `json:"summary"`
		*raw
	}{s.Summary(), (*raw)(s)})
}

func (s Summary) String() string {
	if s.Count == 0 {
		return "no samples"
	}
	return fmt.Sprintf("p50 %s  p99 %s  p999 %s  max %s  (n=%d)",
		fmtMS(s.P50), fmtMS(s.P99), fmtMS(s.P999), fmtMS(s.Max), s.Count)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func fmtMS(v float64) string {
	switch {
	case v < 1:
		return fmt.Sprintf("%.0fµs", v*1000)
	case v < 100:
		return fmt.Sprintf("%.2fms", v)
	default:
		return fmt.Sprintf("%.0fms", v)
	}
}
