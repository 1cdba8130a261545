package sim_test

import (
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/llm/sim"
)

// fakeClock is a sim.Clock whose time moves only when the test says.
// Timers fire inside Advance. arms counts every arming (NewTimer and
// Reset), so a test can wait until a stream has gone back to sleep.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
	arms   int
	last   *fakeTimer // the timer armed last
}

var _ sim.Clock = (*fakeClock)(nil)

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) sim.Timer {
	t := &fakeTimer{c: c, ch: make(chan time.Time, 1)}
	c.mu.Lock()
	c.timers = append(c.timers, t)
	c.mu.Unlock()
	t.Reset(d)
	return t
}

// Advance moves the time on by d and fires every timer that is due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	for _, t := range c.timers {
		if t.armed && !t.at.After(c.now) {
			t.armed = false
			t.ch <- c.now
		}
	}
}

// Arms returns how many times a timer was armed so far.
func (c *fakeClock) Arms() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.arms
}

// WaitArmed waits until a timer was armed more than n times, or until
// done is closed, and returns how long from now the last armed timer
// fires (0 if done closed first).
func (c *fakeClock) WaitArmed(tb testing.TB, n int, done <-chan struct{}) time.Duration {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		if c.arms > n && c.last.armed {
			d := c.last.at.Sub(c.now)
			c.mu.Unlock()
			return d
		}
		c.mu.Unlock()
		select {
		case <-done:
			return 0
		default:
		}
		if time.Now().After(deadline) {
			tb.Fatalf("no timer armed after arming %d within 10s", n)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

type fakeTimer struct {
	c     *fakeClock
	ch    chan time.Time
	at    time.Time
	armed bool
}

func (t *fakeTimer) C() <-chan time.Time { return t.ch }

func (t *fakeTimer) Reset(d time.Duration) {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	select { // as Go's timers do since 1.23: no stale value after Reset
	case <-t.ch:
	default:
	}
	t.at, t.armed = t.c.now.Add(d), true
	t.c.arms++
	t.c.last = t
	if d <= 0 {
		t.armed = false
		t.ch <- t.c.now
	}
}

func (t *fakeTimer) Stop() {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	t.armed = false
	select {
	case <-t.ch:
	default:
	}
}
