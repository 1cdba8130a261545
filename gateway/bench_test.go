package gateway_test

import (
	"context"
	"strings"
	"testing"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/llm"
	"github.com/parleyhq/parley/llm/ollama"
)

// benchReply is the scripted reply of the turn benchmarks: 32 tokens of
// 8 bytes, streamed as fast as the upstream can write them.
func benchReply(*testkit.ScriptedRequest) testkit.Script {
	pieces := make([]string, 32)
	for i := range pieces {
		pieces[i] = "token.. "
	}
	return testkit.TokenReply(0, pieces...)
}

// BenchmarkTurn is one whole chat turn as a client sees it: send over a
// real WebSocket, the gateway, the session actor's two appends to
// JetStream and its ack, the generation actor streaming 32 tokens from
// the scripted Ollama, deltas back over the socket, the coalesced chunk
// and the terminal event. The baseline streams the same reply from the
// same upstream with the same provider, with no Parley around it.
func BenchmarkTurn(b *testing.B) {
	b.Run("parley-ws-turn", func(b *testing.B) {
		s := newStack(b, stackOpts{scripted: testkit.ScriptedConfig{Script: benchReply}, commandRate: 1e9, commandBurst: 1e9})
		c := s.dial("")
		id := create(b, c, nil)
		b.ReportAllocs()
		for b.Loop() {
			ack := send(b, c, id, "go")
			fs := c.Terminal(id, ack.Seq+1)
			if f := fs[len(fs)-1]; f.Kind != "generation.completed" {
				b.Fatalf("turn ended %s", f.Raw)
			}
		}
	})
	b.Run("baseline-direct-provider", func(b *testing.B) {
		up := testkit.NewScriptedOllama(b, testkit.ScriptedConfig{Script: benchReply})
		prov, err := ollama.New(ollama.Config{BaseURL: up.URL(), Logger: testkit.Logger(b)})
		if err != nil {
			b.Fatal(err)
		}
		req := llm.Request{Model: "tiny", Messages: []llm.Message{{Role: llm.RoleUser, Content: "go"}}}
		b.ReportAllocs()
		for b.Loop() {
			var n int
			if _, err := prov.Stream(context.Background(), req, func(d llm.Delta) { n += len(d.Text) }); err != nil || n != 256 {
				b.Fatalf("stream: %d bytes, %v", n, err)
			}
		}
	})
}

// BenchmarkResume is the resume latency: on an open socket, attach with a
// cursor in the middle of a running generation until the first byte of
// the missing text arrives (the session's events after the cursor, then
// one delta from the cursor's offset), then detach. The baseline is a
// ping round trip on the same socket.
func BenchmarkResume(b *testing.B) {
	s := newStack(b, stackOpts{commandRate: 1e9, commandBurst: 1e9})
	hold := testkit.NewHold()
	s.upstream.Push(testkit.Script{testkit.StepContent(strings.Repeat("0123456789", 100)), hold.Step(), testkit.StepDone()})
	owner := s.dial("")
	id := create(b, owner, nil)
	send(b, owner, id, "go")
	<-hold.Reached()
	owner.Until(func(f testkit.Frame) bool { return f.Type == "delta" && f.Offset+len(f.Text) == 1000 })
	defer hold.Release()

	c := s.dial("")
	b.Run("parley-attach-with-cursor", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.Send(map[string]any{"type": "attach", "session": id, "after": "3:500"})
			c.Until(func(f testkit.Frame) bool { return f.Type == "delta" })
			c.Send(map[string]any{"type": "detach", "session": id})
		}
	})
	b.Run("baseline-ping", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c.Send(map[string]any{"type": "ping"})
			c.Until(func(f testkit.Frame) bool { return f.Type == "pong" })
		}
	})
}
