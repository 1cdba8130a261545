package upstream

import (
	"context"
	"sync/atomic"
	"time"
)

// Watchdog cancels a stream that waits too long for its first record or
// between two records. Instead of resetting a timer per record it notes
// the time of the last record and re-arms itself lazily when it fires, so
// a record costs two atomic stores, not a timer reset.
//
// A record is whatever the provider counts as one (an NDJSON line, an SSE
// event). Time spent handling a record (between Enter and Leave, i.e. in
// the caller's callback) does not count towards the idle limit.
type Watchdog struct {
	first, idle           time.Duration
	firstCause, idleCause error
	start                 time.Time
	cancel                context.CancelCauseFunc
	timer                 *time.Timer

	started bool         // a record has arrived; stream goroutine only
	last    atomic.Int64 // ns since start when the last record was handled; -1 before the first
	busy    atomic.Bool  // between Enter and Leave
	stopped atomic.Bool  // Stop was called: fire does nothing
}

// StartWatchdog starts a Watchdog that calls cancel(firstCause) when no
// record has arrived first after the start, and cancel(idleCause) when
// idle passes between the end of one record's handling and the arrival of
// the next.
func StartWatchdog(first, idle time.Duration, cancel context.CancelCauseFunc, firstCause, idleCause error) *Watchdog {
	w := &Watchdog{
		first: first, idle: idle,
		firstCause: firstCause, idleCause: idleCause,
		start: time.Now(), cancel: cancel,
	}
	w.last.Store(-1)
	w.timer = time.AfterFunc(first, w.fire)
	return w
}

func (w *Watchdog) since() int64 { return int64(time.Since(w.start)) }

func (w *Watchdog) fire() {
	if w.stopped.Load() {
		return
	}
	if w.busy.Load() {
		w.timer.Reset(w.idle)
		return
	}
	last := w.last.Load()
	if last < 0 {
		w.cancel(w.firstCause)
		return
	}
	gap := time.Duration(w.since() - last)
	if gap >= w.idle {
		w.cancel(w.idleCause)
		return
	}
	w.timer.Reset(w.idle - gap)
}

// Enter marks the arrival of a record and the start of its handling.
func (w *Watchdog) Enter() {
	w.busy.Store(true)
	if !w.started {
		w.started = true
		// From now on the idle limit applies, which may be shorter than
		// what is left of the first-token limit.
		w.timer.Reset(w.idle)
	}
}

// Leave marks the end of a record's handling: the idle gap starts now.
func (w *Watchdog) Leave() {
	w.last.Store(w.since())
	w.busy.Store(false)
}

// Stop stops the timer; the Watchdog cancels nothing after Stop returns
// (a firing already under way may still call cancel, which by then only
// cancels a finished stream's context).
func (w *Watchdog) Stop() {
	w.stopped.Store(true)
	w.timer.Stop()
}
