package actors

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/parleyhq/parley/events"
	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/llm"
	"github.com/parleyhq/parley/llm/ollama"
	"github.com/parleyhq/parley/llm/sim"
)

// benchSystem is a System on a real embedded JetStream with the scripted
// Ollama as its provider.
func benchSystem(b testing.TB, snaps bool) (*System, *events.JetStreamStore, *testkit.ScriptedOllama) {
	b.Helper()
	store := testkit.NewNATS(b, "", "").Store(b)
	up := testkit.NewScriptedOllama(b, testkit.ScriptedConfig{})
	prov, err := ollama.New(ollama.Config{BaseURL: up.URL(), Logger: testkit.Logger(b)})
	if err != nil {
		b.Fatal(err)
	}
	cfg := Config{Store: store, Index: store, Provider: prov, DefaultModel: "tiny", Logger: testkit.Logger(b), SessionIdleTimeout: time.Hour}
	if snaps {
		cfg.Snapshots = store
	}
	sys, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sys.Shutdown(context.Background()) })
	return sys, store, up
}

// writeTurns appends a session of n turns straight to the store: created,
// then per turn message.user, generation.started, two chunks and
// generation.completed, with replies of about 400 bytes.
func writeTurns(b *testing.B, store *events.JetStreamStore, id string, n int) events.Position {
	b.Helper()
	ctx := context.Background()
	at := time.Now()
	seq := uint64(1)
	pos, err := store.Append(ctx, id, 0, events.New(id, seq, events.KindSessionCreated, at, events.SessionCreated{Owner: "u", Model: "tiny"}))
	if err != nil {
		b.Fatal(err)
	}
	reply := strings.Repeat("a reply of some length. ", 16)
	for i := 0; i < n; i++ {
		user, gen := seq+1, seq+2
		evs := []events.Event{
			events.New(id, user, events.KindMessageUser, at, events.MessageUser{Content: fmt.Sprintf("question %d, of a typical length for a chat", i)}),
			events.New(id, gen, events.KindGenerationStarted, at, events.GenerationStarted{Model: "tiny", Provider: "ollama", ReplyTo: user}),
			events.New(id, gen+1, events.KindGenerationChunk, at, events.GenerationChunk{Gen: gen, Offset: 0, Text: reply[:200]}),
			events.New(id, gen+2, events.KindGenerationChunk, at, events.GenerationChunk{Gen: gen, Offset: 200, Text: reply[200:]}),
			events.New(id, gen+3, events.KindGenerationCompleted, at, events.GenerationCompleted{Gen: gen, Text: reply, DoneReason: "stop"}),
		}
		if pos, err = store.Append(ctx, id, pos, evs...); err != nil {
			b.Fatal(err)
		}
		seq = gen + 3
	}
	return pos
}

// BenchmarkHotDetail reads a live 100-turn session's state through its
// actor (request, answer): no disk.
func BenchmarkHotDetail(b *testing.B) {
	sys, store, _ := benchSystem(b, false)
	writeTurns(b, store, "hot", 100)
	ctx := context.Background()
	if _, err := sys.Detail(ctx, "u", "hot"); err != nil { // rehydrate once
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := sys.Detail(ctx, "u", "hot"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkHotContext builds the model context of a live 1,000-turn
// session from its in-memory state, trimmed to a 4,096-token window; the
// baseline sends the whole conversation (no window).
func BenchmarkHotContext(b *testing.B) {
	_, store, _ := benchSystem(b, false)
	writeTurns(b, store, "ctx", 1000)
	evs, _, err := store.Load(context.Background(), "ctx", 0)
	if err != nil {
		b.Fatal(err)
	}
	st := newState()
	if err := foldInto(st, evs); err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name   string
		budget int
	}{
		{"window-4096", 4096 - llm.ReplyReserve(4096)},
		{"baseline-whole-conversation", 0},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = st.context(st.lastUserSeq(), nil, bc.budget)
			}
		})
	}
}

// BenchmarkColdRehydrate rebuilds a 1,000-turn session (5,001 events, in a
// stream shared with 50 other sessions) in a fresh actor: from its
// snapshot plus a 25-event tail, against replaying the whole log.
func BenchmarkColdRehydrate(b *testing.B) {
	for _, withSnap := range []bool{true, false} {
		name := "full-replay"
		if withSnap {
			name = "snapshot+tail"
		}
		b.Run(name, func(b *testing.B) {
			sys, store, _ := benchSystem(b, withSnap)
			for i := 0; i < 50; i++ {
				writeTurns(b, store, fmt.Sprintf("other%d", i), 20)
			}
			writeTurns(b, store, "big", 995)
			if withSnap {
				a := newSessionActor(sys, "big", false)
				if err := a.reload(); err != nil { // a long tail: writes the snapshot
					b.Fatal(err)
				}
				if a.snapPos == 0 {
					b.Fatal("no snapshot written")
				}
			}
			writeTurnsAfter(b, store, "big", 5) // the tail
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				a := newSessionActor(sys, "big", false)
				if err := a.reload(); err != nil {
					b.Fatal(err)
				}
				if a.st.lastSeq != 1+5*1000 {
					b.Fatalf("rehydrated to seq %d", a.st.lastSeq)
				}
			}
		})
	}
}

// writeTurnsAfter appends n more turns to an existing session.
func writeTurnsAfter(b *testing.B, store *events.JetStreamStore, id string, n int) {
	b.Helper()
	ctx := context.Background()
	evs, pos, err := store.Load(ctx, id, 0)
	if err != nil {
		b.Fatal(err)
	}
	seq := evs[len(evs)-1].Seq
	at := time.Now()
	for i := 0; i < n; i++ {
		user, gen := seq+1, seq+2
		batch := []events.Event{
			events.New(id, user, events.KindMessageUser, at, events.MessageUser{Content: "later"}),
			events.New(id, gen, events.KindGenerationStarted, at, events.GenerationStarted{ReplyTo: user}),
			events.New(id, gen+1, events.KindGenerationChunk, at, events.GenerationChunk{Gen: gen, Text: "x"}),
			events.New(id, gen+2, events.KindGenerationChunk, at, events.GenerationChunk{Gen: gen, Offset: 1, Text: "y"}),
			events.New(id, gen+3, events.KindGenerationCompleted, at, events.GenerationCompleted{Gen: gen, Text: "xy"}),
		}
		if pos, err = store.Append(ctx, id, pos, batch...); err != nil {
			b.Fatal(err)
		}
		seq = gen + 3
	}
}

// BenchmarkWritesPerGeneration streams replies of 10 to 5,000 tokens, 1 ms
// apart, and reports JetStream writes per generation (started, chunks,
// terminal): bounded by the reply's duration and size, not its tokens.
func BenchmarkWritesPerGeneration(b *testing.B) {
	for _, tokens := range []int{10, 100, 1000, 5000} {
		b.Run(fmt.Sprintf("tokens=%d", tokens), func(b *testing.B) {
			sys, store, up := benchSystem(b, false)
			ctx := context.Background()
			info, err := sys.Create(ctx, "u", CreateParams{})
			if err != nil {
				b.Fatal(err)
			}
			pieces := make([]string, tokens)
			for i := range pieces {
				pieces[i] = "tok "
			}
			gens := 0
			b.ResetTimer()
			for b.Loop() {
				up.Push(testkit.TokenReply(time.Millisecond, pieces...))
				if _, err := sys.Send(ctx, "u", info.ID, SendParams{Content: "go"}); err != nil {
					b.Fatal(err)
				}
				for {
					d, err := sys.Detail(ctx, "u", info.ID)
					if err != nil {
						b.Fatal(err)
					}
					if !d.Generating {
						break
					}
					time.Sleep(time.Millisecond)
				}
				gens++
			}
			b.StopTimer()
			evs, _, err := store.Load(ctx, info.ID, 0)
			if err != nil {
				b.Fatal(err)
			}
			writes := 0
			for _, ev := range evs {
				switch ev.Kind {
				case events.KindGenerationStarted, events.KindGenerationChunk:
					writes++
				default:
					if ev.Kind.Terminal() {
						writes++
					}
				}
			}
			b.ReportMetric(float64(writes)/float64(gens), "writes/gen")
			b.ReportMetric(float64(tokens), "tokens/gen")
		})
	}
}

// nopSink is a connection that takes frames and drops them.
type nopSink struct{ frames atomic.Uint64 }

func (s *nopSink) Write(*Frame)      { s.frames.Add(1) }
func (s *nopSink) Close(int, string) {}

// BenchmarkTokenHandoff is what a token costs between the provider's
// callback and a connection's sink: UTF-8 carry, the genDelta message to
// the session actor, the reply buffer, one delta frame encoded and
// fanned out to one attached connection actor, and the coalesced chunk
// writes. The simulated model streams 2,000-token replies unpaced; the
// baseline is the same provider's stream with a callback that only counts.
func BenchmarkTokenHandoff(b *testing.B) {
	const tokens = 2000
	newSim := func(b *testing.B) *sim.Provider {
		p, err := sim.New(sim.Config{TokensPerSecond: math.Inf(1), ReplyTokens: tokens, Models: []string{"tiny"}, Logger: testkit.Logger(b)})
		if err != nil {
			b.Fatal(err)
		}
		return p
	}
	b.Run("parley-provider-to-connection", func(b *testing.B) {
		store := testkit.NewNATS(b, "", "").Store(b)
		sys, err := New(Config{Store: store, Index: store, Provider: newSim(b), DefaultModel: "tiny", Logger: testkit.Logger(b), SessionIdleTimeout: time.Hour})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = sys.Shutdown(context.Background()) })
		ctx := context.Background()
		info, err := sys.Create(ctx, "u", CreateParams{})
		if err != nil {
			b.Fatal(err)
		}
		sink := &nopSink{}
		conn := sys.Connect("u", sink)
		conn.Deliver(&Command{Type: CmdAttach, Session: info.ID})
		b.ResetTimer()
		for b.Loop() {
			before := sys.Stats().Completed
			if _, err := sys.Send(ctx, "u", info.ID, SendParams{Content: "go"}); err != nil {
				b.Fatal(err)
			}
			for sys.Stats().Completed == before {
				time.Sleep(100 * time.Microsecond)
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*tokens), "ns/token")
		if sink.frames.Load() < uint64(b.N) {
			b.Fatalf("the connection got %d frames", sink.frames.Load())
		}
	})
	b.Run("baseline-provider-alone", func(b *testing.B) {
		p := newSim(b)
		req := llm.Request{Model: "tiny", Messages: []llm.Message{{Role: llm.RoleUser, Content: "go"}}}
		for b.Loop() {
			n := 0
			if _, err := p.Stream(context.Background(), req, func(llm.Delta) { n++ }); err != nil || n == 0 {
				b.Fatalf("%d deltas, %v", n, err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*tokens), "ns/token")
	})
}

// countSink is a Sink that counts what it is given and keeps nothing.
type countSink struct{ acks atomic.Int64 }

func (s *countSink) Write(f *Frame) {
	if f.Type == FrameAck {
		s.acks.Add(1)
	}
}
func (s *countSink) Close(int, string) {}

// BenchmarkIdleConnection measures the live heap one idle connection
// actor attached to a session costs (the actor, its mailbox and process
// registration, its attach bookkeeping here and in the session actor),
// the actors' share of the 2.5 KiB budget per idle WebSocket. The
// gateway's share (nbio's connection, its WebSocket state and timers) is
// measured by `bench/run.sh profile`.
func BenchmarkIdleConnection(b *testing.B) {
	sys, _, _ := benchSystem(b, true)
	ctx := context.Background()
	const sessions = 100
	ids := make([]string, sessions)
	for i := range ids {
		info, err := sys.Create(ctx, "u", CreateParams{})
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = info.ID
	}
	const n = 10000
	for b.Loop() {
		sink := &countSink{}
		before := liveHeap()
		conns := make([]*Conn, n)
		for i := range conns {
			conns[i] = sys.Connect("u", sink)
			conns[i].Deliver(&Command{Type: CmdAttach, ID: "a", Session: ids[i%sessions]})
		}
		deadline := time.Now().Add(30 * time.Second)
		for sink.acks.Load() < n {
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d attaches acked", sink.acks.Load(), n)
			}
			time.Sleep(time.Millisecond)
		}
		after := liveHeap()
		b.ReportMetric(float64(after-before)/n, "B/conn")
		b.StopTimer()
		for _, c := range conns {
			c.Closed()
		}
		for sys.Stats().Connections > 0 {
			time.Sleep(time.Millisecond)
		}
		b.StartTimer()
	}
}

// liveHeap is the heap in use after two collections.
func liveHeap() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}
