package llm

import (
	"context"
	"sync"
)

// Gate limits how many generations run at once against each model, so a
// small model server is never sent more than it serves in parallel (Ollama
// queues the rest itself, invisibly, and times them out). Waiters are
// served first come, first served, per model, and are told their place in
// line whenever it changes. The zero value is not usable; see NewGate.
type Gate struct {
	limit int // slots per model; <= 0 means no limit

	mu     sync.Mutex
	models map[string]*gateQueue
}

// gateQueue is one model's slots and waiters.
type gateQueue struct {
	running int
	waiting []*gateWaiter
}

type gateWaiter struct {
	ready   chan struct{} // closed when the waiter got a slot
	onPlace func(int)
	place   int // last place reported
}

// NewGate returns a Gate with limit concurrent generations per model;
// limit <= 0 means no limit (Acquire never waits).
func NewGate(limit int) *Gate {
	return &Gate{limit: limit, models: make(map[string]*gateQueue)}
}

// Limit is the number of slots per model (<= 0: unlimited).
func (g *Gate) Limit() int { return g.limit }

// Acquire waits for a slot for model and returns the function that gives
// it back (call it exactly once). While waiting, onPlace (if not nil) is
// called with the caller's 1-based place in line, first when it joins
// and then whenever it moves up; it is called from whichever goroutine
// changed the line, outside the Gate's lock, and must not block. When ctx
// ends first, Acquire leaves the line and returns ctx.Err(): the caller
// never reached the model server.
func (g *Gate) Acquire(ctx context.Context, model string, onPlace func(int)) (release func(), err error) {
	if g.limit <= 0 {
		return func() {}, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	key := ModelKey(model)
	g.mu.Lock()
	q := g.models[key]
	if q == nil {
		q = &gateQueue{}
		g.models[key] = q
	}
	if q.running < g.limit && len(q.waiting) == 0 {
		q.running++
		g.mu.Unlock()
		return g.releaser(key), nil
	}
	w := &gateWaiter{ready: make(chan struct{}), onPlace: onPlace, place: len(q.waiting) + 1}
	q.waiting = append(q.waiting, w)
	place := w.place
	g.mu.Unlock()
	if onPlace != nil {
		onPlace(place)
	}

	select {
	case <-w.ready:
		return g.releaser(key), nil
	case <-ctx.Done():
	}
	g.mu.Lock()
	select {
	case <-w.ready:
		// Granted while ctx ended: give the slot back.
		g.mu.Unlock()
		g.releaser(key)()
		return nil, ctx.Err()
	default:
	}
	for i, o := range q.waiting {
		if o == w {
			q.waiting = append(q.waiting[:i], q.waiting[i+1:]...)
			break
		}
	}
	moved := q.renumber()
	g.mu.Unlock()
	notify(moved)
	return nil, ctx.Err()
}

// releaser returns the once-only function that frees a slot of key and
// hands it to the first waiter.
func (g *Gate) releaser(key string) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			q := g.models[key]
			q.running--
			var moved []placeChange
			if len(q.waiting) > 0 && q.running < g.limit {
				w := q.waiting[0]
				q.waiting[0] = nil
				q.waiting = q.waiting[1:]
				q.running++
				close(w.ready)
				moved = q.renumber()
			}
			if q.running == 0 && len(q.waiting) == 0 {
				delete(g.models, key)
			}
			g.mu.Unlock()
			notify(moved)
		})
	}
}

// placeChange is a waiter's new place, to report once the lock is free.
type placeChange struct {
	onPlace func(int)
	place   int
}

// renumber updates each waiter's place and returns the changes to
// report. The caller holds the lock.
func (q *gateQueue) renumber() []placeChange {
	var moved []placeChange
	for i, w := range q.waiting {
		if w.place != i+1 {
			w.place = i + 1
			if w.onPlace != nil {
				moved = append(moved, placeChange{w.onPlace, w.place})
			}
		}
	}
	return moved
}

// notify reports place changes. Two changes racing to report may arrive
// out of order; a receiver that keeps the smallest place it was told
// while still waiting stays right, as places only shrink.
func notify(moved []placeChange) {
	for _, c := range moved {
		c.onPlace(c.place)
	}
}

// GateStats is the state of one model's line.
type GateStats struct {
	Running, Waiting int
}

// Stats returns the running and waiting generations of model.
func (g *Gate) Stats(model string) GateStats {
	g.mu.Lock()
	defer g.mu.Unlock()
	q := g.models[ModelKey(model)]
	if q == nil {
		return GateStats{}
	}
	return GateStats{Running: q.running, Waiting: len(q.waiting)}
}

// Waiting is how many callers wait in line, over all models.
func (g *Gate) Waiting() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, q := range g.models {
		n += len(q.waiting)
	}
	return n
}
