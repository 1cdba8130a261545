// Command parleyprof runs the same stack as `parley serve` with the
// embedded NATS (configured by the same PARLEY_* variables, see
// docs/config.md) plus net/http/pprof on a second loopback listener, so
// that benchmarks can read goroutine counts and take heap profiles of a
// server holding many connections:
//
//	PARLEY_DATA_DIR=$(mktemp -d) PARLEY_LISTEN=127.0.0.1:18080 go run ./bench/parleyprof -pprof 127.0.0.1:16060
//	go tool pprof -sample_index=inuse_space http://127.0.0.1:16060/debug/pprof/heap
//
// It is a benchmark harness, not a way to run Parley: it skips serve's
// data-dir lock, external NATS and model-server checks. (A debug listener
// in `parley serve` itself would make it unnecessary.)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/parleyhq/parley/actors"
	"github.com/parleyhq/parley/config"
	"github.com/parleyhq/parley/events"
	"github.com/parleyhq/parley/gateway"
	"github.com/parleyhq/parley/llm"
	"github.com/parleyhq/parley/llm/ollama"
	"github.com/parleyhq/parley/llm/sim"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "parleyprof:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("parleyprof", flag.ContinueOnError)
	pprofAddr := fs.String("pprof", "127.0.0.1:16060", "net/http/pprof listener (loopback)")
	rate := fs.Int("mem-profile-rate", 512, "runtime.MemProfileRate: bytes between heap samples (the runtime's default, 512 KiB, is too coarse for per-connection figures)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	runtime.MemProfileRate = *rate
	if host, _, err := net.SplitHostPort(*pprofAddr); err != nil || !net.ParseIP(host).IsLoopback() {
		return fmt.Errorf("-pprof %q: want a loopback address", *pprofAddr)
	}
	cfg, err := config.FromEnv(os.Getenv)
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))

	emb, err := events.StartEmbedded(events.EmbeddedConfig{StoreDir: cfg.DataDir, Listen: cfg.NATSListen, SyncInterval: cfg.SyncInterval, Logger: log})
	if err != nil {
		return err
	}
	defer emb.Shutdown()
	nc, err := emb.Connect()
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	startCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	store, err := events.NewJetStreamStore(startCtx, js, events.JetStreamConfig{})
	if err != nil {
		return err
	}
	var prov llm.Provider
	if cfg.Provider == config.ProviderSim {
		prov, err = sim.New(sim.Config{
			TTFT: cfg.SimTTFT, TokensPerSecond: cfg.SimTokensPerSecond, ReplyTokens: cfg.SimReplyTokens,
			Models: []string{cfg.Model, sim.DefaultModel}, Faults: cfg.SimFaults, Logger: log,
		})
	} else {
		var op *ollama.Provider
		op, err = ollama.New(ollama.Config{
			BaseURL: cfg.OllamaHost, ConnectTimeout: cfg.UpstreamConnectTimeout, FirstTokenTimeout: cfg.UpstreamFirstTokenTimeout,
			IdleTimeout: cfg.UpstreamIdleTimeout, TotalTimeout: cfg.UpstreamTotalTimeout, Logger: log,
		})
		if err == nil {
			defer op.Close()
			prov = op
		}
	}
	if err != nil {
		return err
	}
	sys, err := actors.New(actors.Config{
		Store: store, Index: store, Snapshots: store, Provider: prov, DefaultModel: cfg.Model,
		ChunkInterval: cfg.ChunkInterval, ChunkBytes: cfg.ChunkBytes, SessionIdleTimeout: cfg.SessionIdleTimeout, Logger: log,
	})
	if err != nil {
		return err
	}
	srv, err := gateway.New(gateway.Config{
		Listen: cfg.Listen, System: sys, MaxFrameBytes: cfg.MaxFrameBytes,
		PingInterval: cfg.WSPingInterval, IdleTimeout: cfg.WSIdleTimeout, Logger: log,
	})
	if err != nil {
		return err
	}
	if err := srv.Start(); err != nil {
		return err
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	ln, err := net.Listen("tcp", *pprofAddr)
	if err != nil {
		return err
	}
	psrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	perr := make(chan error, 1)
	go func() { perr <- psrv.Serve(ln) }()
	fmt.Printf("parleyprof listening on http://%s  pprof http://%s/debug/pprof  provider %s (model %s)\n", srv.Addr(), ln.Addr(), prov.Name(), cfg.Model)

	<-ctx.Done()
	shut, cancelShut := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancelShut()
	_ = psrv.Shutdown(shut)
	if err := <-perr; !errors.Is(err, http.ErrServerClosed) {
		log.Warn("pprof listener", slog.Any("error", err))
	}
	srv.Drain()
	return errors.Join(sys.Drain(shut), srv.Shutdown(shut), sys.Shutdown(shut))
}
