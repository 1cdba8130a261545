package testkit

import (
	"sync"
	"time"
)

// queue is an unbounded FIFO filled by one reader goroutine and drained by
// the test. It holds only what arrived, so thousands of idle clients cost
// little.
type queue[T any] struct {
	mu    sync.Mutex
	items []T
	ready chan struct{} // signalled, without blocking, on every push
}

func newQueue[T any]() *queue[T] { return &queue[T]{ready: make(chan struct{}, 1)} }

func (q *queue[T]) push(v T) {
	q.mu.Lock()
	q.items = append(q.items, v)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

func (q *queue[T]) take() (T, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var zero T
	if len(q.items) == 0 {
		return zero, false
	}
	v := q.items[0]
	q.items[0] = zero
	q.items = q.items[1:]
	return v, true
}

// wait takes the next item, waiting until it arrives, done is closed (and
// nothing is left), or wait passes. ok is false in the last two cases and
// closed tells which.
func (q *queue[T]) wait(done <-chan struct{}, wait time.Duration) (v T, ok, closed bool) {
	timeout := time.NewTimer(wait)
	defer timeout.Stop()
	for {
		if v, ok := q.take(); ok {
			return v, true, false
		}
		select {
		case <-q.ready:
		case <-done:
			v, ok := q.take()
			return v, ok, !ok
		case <-timeout.C:
			return v, false, false
		}
	}
}
