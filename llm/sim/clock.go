package sim

import "time"

// Clock is the time source a Provider paces its streams by. The zero
// Config uses the system clock; tests inject a fake one to check timing
// without waiting.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that fires once, d from now.
	NewTimer(d time.Duration) Timer
}

// Timer is a one-shot timer as a stream uses it: one per stream, re-armed
// with Reset for each wait.
type Timer interface {
	// C delivers the time when the timer fires.
	C() <-chan time.Time
	// Reset re-arms the timer to fire d from now. After Reset returns, C
	// delivers nothing from an earlier arming.
	Reset(d time.Duration)
	// Stop disarms the timer.
	Stop()
}

// systemClock is the Clock of the time package.
type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) NewTimer(d time.Duration) Timer { return systemTimer{time.NewTimer(d)} }

// systemTimer relies on the timer semantics of Go 1.23 and later (the
// module's go line is newer): Reset and Stop discard a value not yet
// received, so no drain is needed.
type systemTimer struct{ t *time.Timer }

func (t systemTimer) C() <-chan time.Time   { return t.t.C }
func (t systemTimer) Reset(d time.Duration) { t.t.Reset(d) }
func (t systemTimer) Stop()                 { t.t.Stop() }
