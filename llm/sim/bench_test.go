package sim_test

import (
	"context"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/llm"
	"github.com/parleyhq/parley/llm/sim"
)

// BenchmarkStreamPerToken is the cost of one token with pacing off: text
// generation, the occasional split, the ctx check and the callback.
//
//	go test -run '^$' -bench StreamPerToken -benchmem ./llm/sim
func BenchmarkStreamPerToken(b *testing.B) {
	const tokens = 1000
	p := newSim(b, sim.Config{TokensPerSecond: math.Inf(1), ReplyTokens: tokens})
	req := ask("benchmark")
	var n int
	b.ReportAllocs()
	for b.Loop() {
		if _, err := p.Stream(context.Background(), req, func(d llm.Delta) { n += len(d.Text) }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*tokens), "ns/token")
	b.ReportMetric(0, "ns/op") // per op is per 1000 tokens: see ns/token
}

// BenchmarkConcurrentStreams runs many paced streams at once, as a load
// test does (50 tokens/s each, 2 s of tokens), and reports the CPU they
// cost (cpu-cores: CPU time over wall time, whole process) and how late
// the slowest stream finished against its schedule (max-late-ms).
//
//	go test -run '^$' -bench ConcurrentStreams -benchtime 1x ./llm/sim
func BenchmarkConcurrentStreams(b *testing.B) {
	for _, streams := range []int{200, 2000} {
		b.Run(fmt.Sprint(streams), func(b *testing.B) {
			const (
				rate   = 50
				tokens = 100
				ttft   = 50 * time.Millisecond
			)
			p := newSim(b, sim.Config{TTFT: ttft, TokensPerSecond: rate, ReplyTokens: tokens})
			want := ttft + (tokens-1)*time.Second/rate
			var late time.Duration
			var total int
			cpu0, wall0 := testkit.CPUTime(), time.Now()
			for b.Loop() {
				var wg sync.WaitGroup
				var mu sync.Mutex
				for i := range streams {
					wg.Add(1)
					go func() {
						defer wg.Done()
						start := time.Now()
						n := 0
						_, err := p.Stream(context.Background(), ask(fmt.Sprint("load ", i)), func(llm.Delta) { n++ })
						took := time.Since(start)
						mu.Lock()
						defer mu.Unlock()
						if err != nil {
							b.Error(err)
						}
						total += n
						late = max(late, took-want)
					}()
				}
				wg.Wait()
			}
			cpu, wall := testkit.CPUTime()-cpu0, time.Since(wall0)
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(float64(total)/wall.Seconds(), "tokens/s")
			if cpu > 0 {
				b.ReportMetric(cpu.Seconds()/wall.Seconds(), "cpu-cores")
				b.ReportMetric(float64(cpu.Nanoseconds())/float64(total), "cpu-ns/token")
			}
			b.ReportMetric(float64(late.Microseconds())/1000, "max-late-ms")
		})
	}
}
