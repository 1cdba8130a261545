package upstream

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MaxRetryAfter caps the hint RetryAfter returns, so that a bogus header
// cannot park a caller for days.
const MaxRetryAfter = 24 * time.Hour

// RetryAfter returns the server's hint for when to try again, or zero when
// it gave none. It reads, in order of preference, "retry-after-ms"
// (milliseconds, sent by OpenAI) and "Retry-After" (RFC 9110: a number of
// seconds, or an HTTP-date, measured from now). Fractional values are
// accepted; a negative value, a date in the past or a value that does not
// parse counts as no hint. Hints above MaxRetryAfter are capped.
func RetryAfter(h http.Header, now time.Time) time.Duration {
	if v := strings.TrimSpace(h.Get("Retry-After-Ms")); v != "" {
		if d, ok := parseNumber(v, time.Millisecond); ok {
			return d
		}
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0
	}
	if d, ok := parseNumber(v, time.Second); ok {
		return d
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return min(d, MaxRetryAfter)
		}
	}
	return 0
}

// parseNumber parses a non-negative decimal number of units.
func parseNumber(s string, unit time.Duration) (time.Duration, bool) {
	f, err := strconv.ParseFloat(s, 64)
	if errors.Is(err, strconv.ErrRange) && math.IsInf(f, 1) {
		return MaxRetryAfter, true // a number too large for a float64
	}
	if err != nil || math.IsNaN(f) || f < 0 {
		return 0, false
	}
	if math.IsInf(f, 1) || f*float64(unit) >= float64(MaxRetryAfter) {
		return MaxRetryAfter, true
	}
	return time.Duration(f * float64(unit)), true
}
