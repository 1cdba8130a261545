package sim

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Faults injects upstream failures into chosen requests, so that load
// tests and demos can exercise Parley's failure paths. The zero value
// injects none. Each fault has a Select that chooses the requests it hits,
// by the Provider's count of accepted requests (1, 2, 3…; a request for an
// unknown model is not counted). The choice depends only on that count,
// so a run that sends requests in the same order meets the same faults.
//
// When one request is chosen by several faults: Unavailable wins (nothing
// is streamed); otherwise Cut and Error fire after their number of tokens,
// the earlier one first (Cut on a tie), and Pause stretches one gap on the
// way. A fault placed at or beyond the end of the reply does not fire.
//
// ParseFaults reads the same settings from one string (PARLEY_SIM_FAULTS).
type Faults struct {
	// Unavailable fails the chosen requests before their first token with
	// an *llm.Error of code upstream_unavailable, marked Retryable, as an
	// overloaded or unreachable model server does.
	Unavailable Select
	// RetryAfter is the Retry-After hint on those errors. Zero value means
	// none.
	RetryAfter time.Duration

	// Cut ends the chosen streams after CutAfter tokens without the final
	// record, as a dropped connection does: every token before the cut is
	// delivered, then Stream returns an *llm.Error of code upstream_error
	// wrapping llm.ErrIncomplete. CutAfter 0 cuts before the first token.
	Cut      Select
	CutAfter int

	// Error fails the chosen streams after ErrorAfter tokens with an
	// *llm.Error of code upstream_error, as a server that hits an error
	// mid-stream does. With ErrorAfter 0 it fails before any output and is
	// Retryable (as an HTTP 500 before output is); after output it is not.
	Error      Select
	ErrorAfter int

	// Pause holds the chosen streams for PauseFor, on top of the usual
	// gap, after PauseAfter tokens (PauseAfter 0 lengthens the wait for
	// the first token), to exercise idle timeouts and keepalives.
	// PauseFor must be positive when Pause chooses requests.
	Pause      Select
	PauseAfter int
	PauseFor   time.Duration
}

// Select chooses requests by their number n (1, 2, 3…). The zero value
// chooses none. Set one of Every and Rate.
type Select struct {
	// Every chooses requests n = Every, 2·Every, 3·Every…; 1 chooses all.
	Every int
	// Rate chooses this fraction of requests, from 0 to 1, by a
	// pseudo-random draw that depends only on n and the fault.
	Rate float64
}

// IsZero reports whether s chooses no request.
func (s Select) IsZero() bool { return s.Every == 0 && s.Rate == 0 }

// chooses reports whether request n is chosen; salt tells the faults
// apart, so that two faults at the same Rate hit different requests.
func (s Select) chooses(n uint64, salt uint64) bool {
	switch {
	case s.Every > 0:
		return n%uint64(s.Every) == 0
	case s.Rate > 0:
		return unitFloat(mix64(n^salt)) < s.Rate
	}
	return false
}

func (s Select) validate(name string) error {
	switch {
	case s.Every < 0:
		return fmt.Errorf("%s_every is %d; want 1 or more", name, s.Every)
	case math.IsNaN(s.Rate) || s.Rate < 0 || s.Rate > 1:
		return fmt.Errorf("%s_rate is %v; want a fraction from 0 to 1", name, s.Rate)
	case s.Every > 0 && s.Rate > 0:
		return fmt.Errorf("both %s_every and %s_rate are set; give one", name, name)
	}
	return nil
}

// Salts for Select.chooses, one per fault.
const (
	saltUnavailable = 0x756e617661696c00 // "unavail"
	saltCut         = 0x6375740000000000 // "cut"
	saltError       = 0x6572726f72000000 // "error"
	saltPause       = 0x7061757365000000 // "pause"
)

// Validate reports the first setting that is out of range.
func (f Faults) Validate() error {
	for _, s := range []struct {
		name string
		sel  Select
	}{{"unavailable", f.Unavailable}, {"cut", f.Cut}, {"error", f.Error}, {"pause", f.Pause}} {
		if err := s.sel.validate(s.name); err != nil {
			return fmt.Errorf("sim: %w", err)
		}
	}
	switch {
	case f.RetryAfter < 0:
		return fmt.Errorf("sim: retry_after is negative (%v)", f.RetryAfter)
	case f.CutAfter < 0:
		return fmt.Errorf("sim: cut_after is negative (%d)", f.CutAfter)
	case f.ErrorAfter < 0:
		return fmt.Errorf("sim: error_after is negative (%d)", f.ErrorAfter)
	case f.PauseAfter < 0:
		return fmt.Errorf("sim: pause_after is negative (%d)", f.PauseAfter)
	case f.PauseFor < 0 || (!f.Pause.IsZero() && f.PauseFor == 0):
		return fmt.Errorf("sim: pause is %v; want a positive duration", f.PauseFor)
	}
	return nil
}

// IsZero reports whether f injects nothing.
func (f Faults) IsZero() bool { return f == Faults{} }

// plan is what the faults do to one request. A position of -1 means the
// fault does not fire.
type plan struct {
	unavailable bool
	cutAt       int // tokens before the cut
	errorAt     int // tokens before the error
	pauseAt     int // tokens before the pause
}

func (f *Faults) plan(n uint64) plan {
	p := plan{cutAt: -1, errorAt: -1, pauseAt: -1}
	if f.IsZero() {
		return p
	}
	p.unavailable = f.Unavailable.chooses(n, saltUnavailable)
	if f.Cut.chooses(n, saltCut) {
		p.cutAt = f.CutAfter
	}
	if f.Error.chooses(n, saltError) {
		p.errorAt = f.ErrorAfter
	}
	if f.Pause.chooses(n, saltPause) {
		p.pauseAt = f.PauseAfter
	}
	return p
}

// Spec keys of ParseFaults, in the order String writes them.
const (
	keyUnavailableEvery = "unavailable_every"
	keyUnavailableRate  = "unavailable_rate"
	keyRetryAfter       = "retry_after"
	keyCutAfter         = "cut_after"
	keyCutEvery         = "cut_every"
	keyCutRate          = "cut_rate"
	keyErrorAfter       = "error_after"
	keyErrorEvery       = "error_every"
	keyErrorRate        = "error_rate"
	keyPauseAfter       = "pause_after"
	keyPause            = "pause"
	keyPauseEvery       = "pause_every"
	keyPauseRate        = "pause_rate"
)

// faultKeys lists every key ParseFaults accepts, for error messages.
var faultKeys = []string{
	keyUnavailableEvery, keyUnavailableRate, keyRetryAfter,
	keyCutAfter, keyCutEvery, keyCutRate,
	keyErrorAfter, keyErrorEvery, keyErrorRate,
	keyPauseAfter, keyPause, keyPauseEvery, keyPauseRate,
}

// ErrFaultSpec is wrapped by every error of ParseFaults.
var ErrFaultSpec = errors.New("sim: bad fault spec")

// FaultSpecError is the error of ParseFaults: what is wrong with the spec,
// naming the entry at fault.
type FaultSpecError struct {
	Msg string
}

func (e *FaultSpecError) Error() string { return ErrFaultSpec.Error() + ": " + e.Msg }

// Unwrap returns ErrFaultSpec.
func (e *FaultSpecError) Unwrap() error { return ErrFaultSpec }

// ParseFaults reads a fault spec: comma-separated key=value pairs, or
// "none" (or an empty string) for no faults. Spaces around entries are
// ignored; a key may appear once.
//
//	unavailable_every=N  fail requests N, 2N… before output (upstream_unavailable, retryable)
//	unavailable_rate=F   fail a fraction F (0 to 1) of requests so
//	retry_after=D        Retry-After hint on those failures (Go duration)
//	cut_after=K          cut streams after K tokens (upstream_error, llm.ErrIncomplete)
//	error_after=K        fail streams with upstream_error after K tokens
//	pause_after=K        pause streams after K tokens…
//	pause=D              …for D (Go duration); give both
//	cut_every=N, cut_rate=F, error_every=N, error_rate=F, pause_every=N, pause_rate=F
//	                     choose which streams those three hit; without one, all
//
// For example "unavailable_every=10,cut_after=50,cut_rate=0.05". Errors
// are *FaultSpecError values, which wrap ErrFaultSpec.
func ParseFaults(spec string) (Faults, error) {
	var f Faults
	spec = strings.TrimSpace(spec)
	if spec == "" || strings.EqualFold(spec, "none") {
		return f, nil
	}
	seen := make(map[string]bool)
	bad := func(format string, args ...any) (Faults, error) {
		return Faults{}, &FaultSpecError{Msg: fmt.Sprintf(format, args...)}
	}
	for entry := range strings.SplitSeq(spec, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		key, val, ok := strings.Cut(entry, "=")
		key, val = strings.ToLower(strings.TrimSpace(key)), strings.TrimSpace(val)
		if !ok || val == "" {
			return bad("%q is not key=value (keys: %s)", entry, strings.Join(faultKeys, ", "))
		}
		if seen[key] {
			return bad("%s is given twice", key)
		}
		seen[key] = true
		var err error
		switch key {
		case keyUnavailableEvery:
			f.Unavailable.Every, err = parseEvery(val)
		case keyUnavailableRate:
			f.Unavailable.Rate, err = parseRate(val)
		case keyRetryAfter:
			f.RetryAfter, err = parseDuration(val, false)
		case keyCutAfter:
			f.CutAfter, err = parseTokens(val)
		case keyCutEvery:
			f.Cut.Every, err = parseEvery(val)
		case keyCutRate:
			f.Cut.Rate, err = parseRate(val)
		case keyErrorAfter:
			f.ErrorAfter, err = parseTokens(val)
		case keyErrorEvery:
			f.Error.Every, err = parseEvery(val)
		case keyErrorRate:
			f.Error.Rate, err = parseRate(val)
		case keyPauseAfter:
			f.PauseAfter, err = parseTokens(val)
		case keyPause:
			f.PauseFor, err = parseDuration(val, true)
		case keyPauseEvery:
			f.Pause.Every, err = parseEvery(val)
		case keyPauseRate:
			f.Pause.Rate, err = parseRate(val)
		default:
			return bad("unknown key %q (keys: %s)", key, strings.Join(faultKeys, ", "))
		}
		if err != nil {
			return bad("%s=%s: %v", key, val, err)
		}
	}

	// Each fault needs its position; a selector alone means nothing.
	for _, g := range []struct {
		pos, every, rate string
		sel              *Select
	}{
		{keyCutAfter, keyCutEvery, keyCutRate, &f.Cut},
		{keyErrorAfter, keyErrorEvery, keyErrorRate, &f.Error},
		{keyPauseAfter, keyPauseEvery, keyPauseRate, &f.Pause},
	} {
		switch {
		case seen[g.every] && seen[g.rate]:
			return bad("give one of %s and %s, not both", g.every, g.rate)
		case !seen[g.pos] && (seen[g.every] || seen[g.rate]):
			return bad("%s or %s needs %s", g.every, g.rate, g.pos)
		case seen[g.pos] && g.sel.IsZero():
			g.sel.Every = 1 // every stream
		}
	}
	switch {
	case seen[keyUnavailableEvery] && seen[keyUnavailableRate]:
		return bad("give one of %s and %s, not both", keyUnavailableEvery, keyUnavailableRate)
	case seen[keyRetryAfter] && f.Unavailable.IsZero():
		return bad("%s needs %s or %s", keyRetryAfter, keyUnavailableEvery, keyUnavailableRate)
	case seen[keyPauseAfter] != seen[keyPause]:
		return bad("give both %s=K (tokens before the pause) and %s=D (its length)", keyPauseAfter, keyPause)
	}
	if err := f.Validate(); err != nil {
		return bad("%v", strings.TrimPrefix(err.Error(), "sim: "))
	}
	return f, nil
}

// String returns a spec that ParseFaults reads back as f (or, for a Faults
// with a position but no Select, as the equivalent "none"): "none" for no
// faults, else the keys that are set, in a fixed order.
func (f Faults) String() string {
	if f.IsZero() {
		return "none"
	}
	var parts []string
	add := func(key, val string) { parts = append(parts, key+"="+val) }
	sel := func(s Select, every, rate string, always bool) {
		switch {
		case s.Every == 1 && !always:
			// implied by the position key
		case s.Every != 0:
			add(every, strconv.Itoa(s.Every))
		case s.Rate != 0:
			add(rate, strconv.FormatFloat(s.Rate, 'g', -1, 64))
		}
	}
	sel(f.Unavailable, keyUnavailableEvery, keyUnavailableRate, true)
	if f.RetryAfter != 0 {
		add(keyRetryAfter, f.RetryAfter.String())
	}
	if !f.Cut.IsZero() {
		add(keyCutAfter, strconv.Itoa(f.CutAfter))
		sel(f.Cut, keyCutEvery, keyCutRate, false)
	}
	if !f.Error.IsZero() {
		add(keyErrorAfter, strconv.Itoa(f.ErrorAfter))
		sel(f.Error, keyErrorEvery, keyErrorRate, false)
	}
	if !f.Pause.IsZero() {
		add(keyPauseAfter, strconv.Itoa(f.PauseAfter))
		add(keyPause, f.PauseFor.String())
		sel(f.Pause, keyPauseEvery, keyPauseRate, false)
	}
	if len(parts) == 0 {
		// Only positions without a Select: nothing fires.
		return "none"
	}
	return strings.Join(parts, ",")
}

func parseEvery(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		return 0, errors.New("want a whole number of requests, 1 or more (1: every request)")
	}
	return n, nil
}

func parseRate(s string) (float64, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || f <= 0 || f > 1 {
		return 0, errors.New("want a fraction of requests above 0 and at most 1, such as 0.05")
	}
	return f, nil
}

func parseTokens(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, errors.New("want a whole number of tokens, 0 or more")
	}
	return n, nil
}

func parseDuration(s string, positive bool) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 || (positive && d == 0) {
		return 0, errors.New("want a positive Go duration such as 500ms, 5s or 2m")
	}
	return d, nil
}
