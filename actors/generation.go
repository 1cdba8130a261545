package actors

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/parleyhq/parley/llm"
)

// generationActor runs one reply: it owns the goroutine that waits for a
// slot at the model (llm.Gate), streams from the provider, and retries a
// failure that came before any output. Stopping the actor cancels the
// context of all of that: a generation stopped in the line never reaches
// the model server, and one streaming has its HTTP request cancelled, so
// the model server stops too. The stream's output goes to the session
// actor as genDelta messages of complete UTF-8 text and one genDone.
type generationActor struct {
	sys     *System
	session *actor.PID
	gen     uint64
	req     llm.Request
	ticket  *llm.Ticket // its place in the model's line, taken by the session actor
	cancel  context.CancelFunc
}

var _ actor.Actor = (*generationActor)(nil)

func (g *generationActor) Receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case *actor.Started:
		g.sys.generations.Add(1)
		streamCtx, cancel := context.WithCancel(g.sys.genCtx)
		g.cancel = cancel
		g.sys.wg.Add(1)
		go g.run(streamCtx)
	case *actor.Stopping:
		if g.cancel != nil {
			g.cancel()
		}
	case *actor.Stopped:
		g.sys.generations.Add(-1)
	}
}

// run waits for a slot and streams the reply, retrying as the System's
// RetryPolicy allows. It is the only goroutine touching carry.
func (g *generationActor) run(ctx context.Context) {
	defer g.sys.wg.Done()
	defer g.cancel()
	start := time.Now()

	release, err := g.ticket.Wait(ctx)
	if err != nil {
		g.sys.root.Send(g.session, &genDone{gen: g.gen, err: err})
		return
	}
	defer release()
	if g.ticket.Waited() {
		g.sys.root.Send(g.session, &genQueued{gen: g.gen, place: 0})
	}

	var (
		carry, thinkCarry llm.UTF8Carry
		ttft              time.Duration
		emitted           bool
	)
	emit := func(text, thinking string) {
		// Invalid bytes become U+FFFD here, once, so that byte offsets
		// count exactly the text clients decode.
		text = strings.ToValidUTF8(text, "\uFFFD")
		thinking = strings.ToValidUTF8(thinking, "\uFFFD")
		if text == "" && thinking == "" {
			return
		}
		emitted = true
		if ttft == 0 && text != "" {
			ttft = max(time.Since(start), time.Millisecond)
		}
		g.sys.root.Send(g.session, &genDelta{gen: g.gen, text: text, thinking: thinking})
	}
	var res llm.Result
	for attempt := 0; ; attempt++ {
		res, err = g.sys.cfg.Provider.Stream(ctx, g.req, func(d llm.Delta) {
			emit(carry.Push(d.Text), thinkCarry.Push(d.Thinking))
		})
		if err == nil || ctx.Err() != nil || emitted || !llm.IsRetryable(err) || attempt >= g.sys.retry.Retries {
			break
		}
		wait := g.sys.retry.backoff(attempt, err)
		g.sys.log.Info("upstream refused before the first token; retrying",
			slog.Uint64(logKeyGen, g.gen), slog.Int("attempt", attempt+1), slog.Duration("wait", wait), slog.Any(logKeyError, err))
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
		if ctx.Err() != nil {
			err = ctx.Err()
			break
		}
	}
	if ctx.Err() == nil {
		emit(carry.Flush(), thinkCarry.Flush()) // a sequence the upstream never finished
	}
	g.sys.root.Send(g.session, &genDone{gen: g.gen, result: res, err: err, ttft: ttft})
}

// RetryPolicy says how a generation retries a request the model server
// refused before any output (connection refused, 429, 5xx). A request
// that produced output is never retried: its text was shown.
type RetryPolicy struct {
	// Retries is how many times to try again. Zero value means no retry.
	Retries int
	// Backoff is the wait before the first retry, doubled for each next
	// one. Zero value means 500ms.
	Backoff time.Duration
	// MaxWait caps one wait, including a server's Retry-After. Zero value
	// means 30s.
	MaxWait time.Duration
}

// backoff is the wait before retry attempt+1 after err: the server's
// Retry-After when it gave one, else Backoff doubled per attempt, capped
// at MaxWait.
func (p RetryPolicy) backoff(attempt int, err error) time.Duration {
	var le *llm.Error
	if errors.As(err, &le) && le.RetryAfter > 0 {
		return min(le.RetryAfter, p.MaxWait)
	}
	return min(p.Backoff<<min(attempt, 16), p.MaxWait)
}
