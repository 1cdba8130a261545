package llm

import (
	"context"
	"sync"
)

// Gate limits how many generations run at once against each model, so a
// small model server is never sent more than it serves in parallel (Ollama
// queues the rest itself, invisibly, and times them out). Callers are
// served first come, first served, per model, in the order they Join,
// and are told their place in line whenever it changes. The zero value is
// not usable; see NewGate.
type Gate struct {
	limit int // slots per model; <= 0 means no limit

	mu     sync.Mutex
	models map[string]*gateQueue
}

// gateQueue is one model's slots and waiters.
type gateQueue struct {
	running int
	waiting []*Ticket
}

// Ticket is a place in a model's line, from Join to the slot's release.
type Ticket struct {
	g       *Gate
	key     string
	ready   chan struct{} // closed when the ticket got a slot
	onPlace func(int)
	// Guarded by g.mu:
	place      int  // current place in line; 0 once it has a slot
	waitedOnce bool // it stood in line before getting its slot
	done       bool // released or left
}

// NewGate returns a Gate with limit concurrent generations per model;
// limit <= 0 means no limit (Wait never waits).
func NewGate(limit int) *Gate {
	return &Gate{limit: limit, models: make(map[string]*gateQueue)}
}

// Join takes a place in model's line at once, without waiting: the order
// of Join calls is the order of service. onPlace (may be nil) is called
// with the ticket's 1-based place in line when it joins behind others
// and whenever it moves up; it is called with the Gate's lock held, from
// whichever goroutine changed the line, in order, so it must not block
// or call the Gate. Follow with Wait, or Leave.
func (g *Gate) Join(model string, onPlace func(int)) *Ticket {
	t := &Ticket{g: g, key: ModelKey(model), ready: make(chan struct{}), onPlace: onPlace}
	if g.limit <= 0 {
		close(t.ready)
		return t
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	q := g.models[t.key]
	if q == nil {
		q = &gateQueue{}
		g.models[t.key] = q
	}
	if q.running < g.limit && len(q.waiting) == 0 {
		q.running++
		close(t.ready)
		return t
	}
	q.waiting = append(q.waiting, t)
	t.place = len(q.waiting)
	if onPlace != nil {
		onPlace(t.place)
	}
	return t
}

// Wait waits until the ticket has a slot and returns the function that
// gives the slot back (call it once; later calls do nothing). When ctx
// ends first, the ticket leaves the line and Wait returns ctx.Err(): the
// caller never reached the model server.
func (t *Ticket) Wait(ctx context.Context) (release func(), err error) {
	select {
	case <-t.ready:
		return t.release, nil
	case <-ctx.Done():
	}
	t.Leave()
	return nil, ctx.Err()
}

// Waited reports whether the ticket stood in line before its slot.
func (t *Ticket) Waited() bool {
	if t.g.limit <= 0 {
		return false
	}
	t.g.mu.Lock()
	defer t.g.mu.Unlock()
	return t.place != 0 || t.waitedOnce
}

// Leave gives up the ticket: it leaves the line, or gives back its slot
// if it had one. It is safe to call more than once and after release.
func (t *Ticket) Leave() { t.release() }

// release frees the ticket's slot or place and hands a freed slot to the
// first waiter.
func (t *Ticket) release() {
	g := t.g
	if g.limit <= 0 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if t.done {
		return
	}
	t.done = true
	q := g.models[t.key]
	if t.place > 0 { // still in line
		for i, o := range q.waiting {
			if o == t {
				q.waiting = append(q.waiting[:i], q.waiting[i+1:]...)
				break
			}
		}
		t.place = 0
	} else {
		q.running--
	}
	for len(q.waiting) > 0 && q.running < g.limit {
		w := q.waiting[0]
		q.waiting[0] = nil
		q.waiting = q.waiting[1:]
		q.running++
		w.place = 0
		w.waitedOnce = true
		close(w.ready)
	}
	for i, w := range q.waiting {
		if w.place != i+1 {
			w.place = i + 1
			if w.onPlace != nil {
				w.onPlace(w.place)
			}
		}
	}
	if q.running == 0 && len(q.waiting) == 0 {
		delete(g.models, t.key)
	}
}

// Acquire is Join then Wait: it waits for a slot for model.
func (g *Gate) Acquire(ctx context.Context, model string, onPlace func(int)) (release func(), err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return g.Join(model, onPlace).Wait(ctx)
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
