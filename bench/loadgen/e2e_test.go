package loadgen

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/parleyhq/parley/actors"
	"github.com/parleyhq/parley/gateway"
	"github.com/parleyhq/parley/internal/testkit"
	"github.com/parleyhq/parley/llm/ollama"
)

// workerEnv makes the test binary a worker process (see TestMain).
const workerEnv = "PARLEY_LOADGEN_TEST_WORKER"

func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) == "1" {
		if err := ServeWorker(context.Background(), os.Stdin, os.Stdout, nil); err != nil {
			fmt.Fprintln(os.Stderr, "worker:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// parleyStack starts a whole Parley in this process (embedded NATS with
// JetStream, actors, the nbio gateway on 127.0.0.1) whose model server
// streams 10 tokens 10 ms apart, and returns its WebSocket URL.
func parleyStack(t *testing.T) string {
	t.Helper()
	n := testkit.NewNATS(t, "", "")
	store := n.Store(t)
	tokens := make([]string, 10)
	for i := range tokens {
		tokens[i] = fmt.Sprintf("t%d ", i)
	}
	up := testkit.NewScriptedOllama(t, testkit.ScriptedConfig{
		Script: func(*testkit.ScriptedRequest) testkit.Script {
			return testkit.TokenReply(10*time.Millisecond, tokens...)
		},
	})
	prov, err := ollama.New(ollama.Config{BaseURL: up.URL(), Logger: testkit.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	sys, err := actors.New(actors.Config{Store: store, Index: store, Snapshots: store, Provider: prov, DefaultModel: "tiny", Logger: testkit.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := gateway.New(gateway.Config{Listen: "127.0.0.1:0", System: sys, Logger: testkit.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_ = sys.Drain(ctx)
		_ = srv.Shutdown(ctx)
		_ = sys.Shutdown(ctx)
		_ = prov.Close()
	})
	return "ws://" + srv.Addr() + "/v1/ws"
}

// checkReport checks what every small run must show: all connections
// held, chats completed and seen by every attached connection, and no
// errors. Timing is never asserted.
func checkReport(t *testing.T, rep *Report, conns, chats int) {
	t.Helper()
	var out strings.Builder
	_ = rep.WriteText(&out)
	t.Logf("report:\n%s", out.String())
	if len(rep.Steps) == 0 || rep.Steps[len(rep.Steps)-1].Held != int64(conns) {
		t.Errorf("steps %+v: want %d held at the last", rep.Steps, conns)
	}
	cl := rep.Client
	if cl == nil {
		t.Fatal("no client report")
	}
	if cl.Snapshot.Opens < int64(conns) || cl.Snapshot.OpenFails != 0 || cl.Snapshot.Unexpected != 0 {
		t.Errorf("opens %d, fails %d, closed by server %d", cl.Snapshot.Opens, cl.Snapshot.OpenFails, cl.Snapshot.Unexpected)
	}
	if len(cl.Snapshot.Errors) > 0 {
		t.Errorf("errors: %v", cl.Snapshot.Errors)
	}
	if cl.Snapshot.Held != 0 {
		t.Errorf("%d connections still held after the run", cl.Snapshot.Held)
	}
	if rep.Chat == nil || rep.Chat.Chats < int64(chats) || rep.Chat.Tokens == 0 {
		t.Fatalf("chat phase %+v: want at least %d chats with tokens", rep.Chat, chats)
	}
	// Each chat's first token reaches every connection of its session
	// (conns/sessions of them), and every token after it too.
	perSession := uint64(conns / rep.Sessions)
	if cl.TTFT.Count < uint64(rep.Chat.Chats)*perSession {
		t.Errorf("%d first-token samples for %d chats over %d connections each", cl.TTFT.Count, rep.Chat.Chats, perSession)
	}
	if cl.ITL.Count == 0 || cl.ChatTime.Count < uint64(rep.Chat.Chats) {
		t.Errorf("inter-token samples %d, chat times %d", cl.ITL.Count, cl.ChatTime.Count)
	}
}

func TestRunAgainstParley(t *testing.T) {
	url := parleyStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var progress strings.Builder
	rep, err := Run(ctx, Config{
		URL: url, Conns: []int{20, 50}, Sessions: 5, Chats: 2,
		ChatDuration: 2 * time.Second, Churn: time.Second,
		Settle: 100 * time.Millisecond, Duration: 45 * time.Second, Progress: 500 * time.Millisecond,
		ServerPID: os.Getpid(), Logger: testkit.Logger(t),
	}, &progress)
	if err != nil {
		t.Fatal(err)
	}
	checkReport(t, rep, 50, 2)
	if rep.Server == nil || rep.Server.After == nil || rep.Steps[0].Server == nil {
		t.Error("server not measured")
	}
	if ch := rep.Churn; ch == nil || ch.Cycles < 1 || ch.HeldAtEnd != 50 || ch.Opened < 50 {
		t.Errorf("churn %+v: want a cycle or more ending with 50 held", ch)
	}
	if !strings.Contains(progress.String(), "held") {
		t.Errorf("no progress lines: %q", progress.String())
	}
}

// TestRunWithWorkerProcesses splits the run over two worker processes
// (this test binary, re-executed) and checks the merged report.
func TestRunWithWorkerProcesses(t *testing.T) {
	url := parleyStack(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rep, err := Run(ctx, Config{
		URL: url, Conns: []int{50}, Sessions: 5, Chats: 2, Procs: 2,
		ChatDuration: 2 * time.Second, Settle: 100 * time.Millisecond, Duration: 45 * time.Second,
		ServerPID: -1, Logger: testkit.Logger(t),
		WorkerCommand: func() *exec.Cmd {
			cmd := exec.Command(exe, "-test.run=^$")
			cmd.Env = append(os.Environ(), workerEnv+"=1")
			return cmd
		},
		WorkerStderr: os.Stderr,
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Procs != 2 {
		t.Errorf("procs %d, want 2", rep.Procs)
	}
	checkReport(t, rep, 50, 2)
}

func TestWorkerReportMerge(t *testing.T) {
	t.Parallel()
	mk := func(held int64, errs map[string]int64, ttft ...time.Duration) *WorkerReport {
		var h Histogram
		for _, d := range ttft {
			h.Record(d)
		}
		return &WorkerReport{Snapshot: Snapshot{Held: held, Opens: held, Chats: 1, Errors: errs}, TTFT: h.Snapshot(), ITL: h.Snapshot()}
	}
	total := &WorkerReport{}
	total.merge(mk(10, map[string]int64{"dial:refused": 2}, time.Millisecond, 3*time.Millisecond))
	total.merge(mk(5, map[string]int64{"dial:refused": 1, "timeout:chat": 4}, 2*time.Millisecond))
	if s := total.Snapshot; s.Held != 15 || s.Opens != 15 || s.Chats != 2 ||
		s.Errors["dial:refused"] != 3 || s.Errors["timeout:chat"] != 4 {
		t.Errorf("merged snapshot %+v", s)
	}
	if total.TTFT.Count != 3 || total.TTFT.Min != int64(time.Millisecond) || total.TTFT.Max != int64(3*time.Millisecond) {
		t.Errorf("merged ttft %+v", total.TTFT.Summary())
	}
	if p50 := total.TTFT.Quantile(0.5); !within(p50, 2*time.Millisecond, 0.01) {
		t.Errorf("merged p50 %v, want 2ms", p50)
	}
	if total.Dial == nil || total.Dial.Count != 0 {
		t.Errorf("histograms no worker sent must merge as empty: %+v", total.Dial)
	}
}
