package actors

import (
	"context"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/parleyhq/parley/llm"
)

// generationActor runs one reply: it owns the goroutine that streams from
// the provider and the context of the upstream request. Stopping the actor
// cancels that context, which cancels the HTTP request, so the model
// server stops too. The stream's output goes to the session actor as
// genDelta messages of complete UTF-8 text and one genDone.
type generationActor struct {
	sys     *System
	session *actor.PID
	gen     uint64
	req     llm.Request
	cancel  context.CancelFunc
}

var _ actor.Actor = (*generationActor)(nil)

func (g *generationActor) Receive(ctx actor.Context) {
	switch ctx.Message().(type) {
	case *actor.Started:
		streamCtx, cancel := context.WithCancel(g.sys.genCtx)
		g.cancel = cancel
		g.sys.wg.Add(1)
		go g.run(streamCtx)
	case *actor.Stopping:
		if g.cancel != nil {
			g.cancel()
		}
	}
}

// run streams the reply. It is the only goroutine touching carry.
func (g *generationActor) run(ctx context.Context) {
	defer g.sys.wg.Done()
	defer g.cancel()
	var (
		carry llm.UTF8Carry
		start = time.Now()
		ttft  time.Duration
	)
	emit := func(text string) {
		// Invalid bytes become U+FFFD here, once, so that byte offsets
		// count exactly the text clients decode.
		text = strings.ToValidUTF8(text, "\uFFFD")
		if text == "" {
			return
		}
		if ttft == 0 {
			ttft = max(time.Since(start), time.Millisecond)
		}
		g.sys.root.Send(g.session, &genDelta{gen: g.gen, text: text})
	}
	res, err := g.sys.cfg.Provider.Stream(ctx, g.req, func(d llm.Delta) {
		emit(carry.Push(d.Text))
	})
	if ctx.Err() == nil {
		emit(carry.Flush()) // a sequence the upstream never finished
	}
	g.sys.root.Send(g.session, &genDone{gen: g.gen, result: res, err: err, ttft: ttft})
}
