package loadgen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Run executes one load-generator run as cfg describes: it opens the
// connections step by step (measuring the server after each), runs the
// chat phase and the churn phase if asked, closes everything, measures
// the server once more and returns the report. Progress lines go to
// progress (nil means none). It never runs longer than cfg.Duration
// (capped at MaxDuration) plus the time to close.
func Run(ctx context.Context, cfg Config, progress io.Writer) (*Report, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if progress == nil {
		progress = io.Discard
	}
	r := &run{cfg: cfg, log: cfg.Logger.With(slog.String("component", "loadgen")), progress: progress}
	return r.run(ctx)
}

type run struct {
	cfg      Config
	log      *slog.Logger
	progress io.Writer
	workers  []workerAPI
	pid      int
	rep      *Report
	start    time.Time

	progMu    sync.Mutex
	lastProg  Snapshot
	lastAt    time.Time
	phase     string
	serverRSS int64
}

func (r *run) run(parent context.Context) (*Report, error) {
	cfg := r.cfg
	r.start = time.Now()
	r.rep = &Report{
		Label: cfg.Label, Target: cfg.URL, Started: r.start.UTC(), Machine: machine(),
		Conns: cfg.Conns, Sessions: cfg.Sessions, Chats: cfg.Chats, Procs: cfg.Procs, SourceIPs: cfg.SourceIPs,
	}
	ctx, cancel := context.WithTimeout(parent, cfg.Duration)
	defer cancel()

	if err := r.findServer(); err != nil {
		return nil, err
	}
	if r.pid > 0 {
		before, err := ReadProc(r.pid)
		if err != nil {
			return nil, err
		}
		r.rep.Server = &ServerInfo{PID: r.pid, Before: before}
		r.serverRSS = before.RSS
		if cfg.PprofURL != "" {
			if rs, err := readPprof(ctx, cfg.PprofURL); err == nil {
				r.rep.Server.RuntimeBefore = &rs
			} else {
				r.log.Warn("pprof not readable", slog.Any("error", err))
			}
			r.heapProfile(ctx, 0)
		}
	}

	if err := r.startWorkers(ctx); err != nil {
		r.closeWorkers()
		return nil, err
	}
	stopProgress := r.startProgress()
	err := r.phases(ctx)
	stopProgress()
	if cerr := r.closeWorkers(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	r.measureAfter(parent)
	r.rep.Elapsed = time.Since(r.start).Seconds()
	if errors.Is(err, context.DeadlineExceeded) && parent.Err() == nil {
		r.rep.Notes = append(r.rep.Notes, fmt.Sprintf("stopped by the run's time bound (%s)", cfg.Duration))
		err = nil
	}
	return r.rep, err
}

// findServer resolves the server pid: given, or the listener of the
// target port.
func (r *run) findServer() error {
	switch {
	case r.cfg.ServerPID > 0:
		r.pid = r.cfg.ServerPID
	case r.cfg.ServerPID < 0:
		return nil
	default:
		u, _ := url.Parse(r.cfg.URL)
		_, p, err := net.SplitHostPort(dialHost(u.Host))
		if err != nil {
			p = "80"
		}
		port, _ := strconv.Atoi(p)
		pid, err := FindListener(port)
		if err != nil {
			r.log.Warn("server process not found; its memory and CPU are not measured (pass the pid)", slog.Any("error", err))
			r.rep.Notes = append(r.rep.Notes, "server process not found: no server figures")
			return nil
		}
		r.pid = pid
	}
	return nil
}

func (r *run) startWorkers(ctx context.Context) error {
	cfg := r.cfg
	if cfg.WorkerCommand == nil || cfg.Procs == 1 {
		cfg.Procs = 1
		r.rep.Procs = 1
		w, err := newWorker(cfg, 0, 1)
		if err != nil {
			return err
		}
		r.workers = []workerAPI{w}
		return nil
	}
	wcfg := cfg
	wcfg.Logger = nil
	for i := range cfg.Procs {
		rw, err := startRemote(ctx, wcfg, i, cfg.Procs)
		if err != nil {
			return err
		}
		r.workers = append(r.workers, rw)
	}
	return nil
}

// all runs f on every worker at once and joins the errors.
func (r *run) all(f func(i int, w workerAPI) error) error {
	errs := make([]error, len(r.workers))
	var wg sync.WaitGroup
	for i, w := range r.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(i, w)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// snapshot sums the workers' latest counters, for progress lines.
func (r *run) snapshot() Snapshot {
	var s Snapshot
	for _, w := range r.workers {
		s.add(w.Snapshot())
	}
	return s
}

// held is how many connections are attached now, for measurements.
func (r *run) held(ctx context.Context) int64 {
	var n int64
	for _, w := range r.workers {
		s, err := w.FreshSnapshot(ctx)
		if err != nil {
			r.log.Warn("worker snapshot", slog.Any("error", err))
		}
		n += s.Held
	}
	return n
}

func (r *run) setPhase(p string) {
	r.progMu.Lock()
	r.phase = p
	r.progMu.Unlock()
	r.log.Info("phase", slog.String("phase", p))
}

func (r *run) phases(ctx context.Context) error {
	cfg := r.cfg
	for _, target := range cfg.Conns {
		r.setPhase(fmt.Sprintf("ramp to %d", target))
		t0 := time.Now()
		err := r.all(func(_ int, w workerAPI) error { _, err := w.Ramp(ctx, target); return err })
		openTime := time.Since(t0)
		held := r.held(ctx)
		st := Step{Target: target, Held: held, OpenSeconds: openTime.Seconds()}
		if openTime > 0 {
			st.OpensPerSecond = float64(held-r.prevHeld()) / openTime.Seconds()
		}
		if err != nil {
			r.rep.Steps = append(r.rep.Steps, st)
			return fmt.Errorf("ramp to %d: %w", target, err)
		}
		r.setPhase(fmt.Sprintf("settle at %d", target))
		if err := sleep(ctx, cfg.Settle); err != nil {
			return err
		}
		st.Held = r.held(ctx)
		r.measureStep(ctx, &st)
		r.rep.Steps = append(r.rep.Steps, st)
		if cfg.Hold > 0 {
			r.setPhase(fmt.Sprintf("hold at %d", target))
			if err := sleep(ctx, cfg.Hold); err != nil {
				return err
			}
		}
	}
	if cfg.Chats > 0 {
		if err := r.chatPhase(ctx); err != nil {
			return err
		}
	}
	if cfg.Churn > 0 {
		if err := r.churnPhase(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (r *run) prevHeld() int64 {
	if n := len(r.rep.Steps); n > 0 {
		return r.rep.Steps[n-1].Held
	}
	return 0
}

func (r *run) measureStep(ctx context.Context, st *Step) {
	if r.pid <= 0 {
		return
	}
	ps, err := ReadProc(r.pid)
	if err != nil {
		r.log.Warn("server not measured", slog.Any("error", err))
		return
	}
	st.Server = &ps
	before := r.rep.Server.Before
	if st.Held > 0 {
		st.RSSPerConn = float64(ps.RSS-before.RSS) / float64(st.Held)
		st.AnonPerConn = float64(ps.RSSAnon-before.RSSAnon) / float64(st.Held)
	}
	if r.cfg.PprofURL != "" {
		if rs, err := readPprof(ctx, r.cfg.PprofURL); err == nil {
			st.Runtime = &rs
			if rb := r.rep.Server.RuntimeBefore; rb != nil && st.Held > 0 {
				st.HeapPerConn = float64(rs.HeapInuse-rb.HeapInuse) / float64(st.Held)
				st.GoroutinesPerConn = float64(rs.Goroutines-rb.Goroutines) / float64(st.Held)
			}
		}
		r.heapProfile(ctx, st.Target)
	}
}

// heapProfile saves the server's heap profile as heap-<n>.pb.gz when
// HeapProfileDir is set.
func (r *run) heapProfile(ctx context.Context, n int) {
	if r.cfg.HeapProfileDir == "" || r.cfg.PprofURL == "" {
		return
	}
	path := filepath.Join(r.cfg.HeapProfileDir, fmt.Sprintf("heap-%d.pb.gz", n))
	if err := saveHeapProfile(ctx, r.cfg.PprofURL, path); err != nil {
		r.log.Warn("heap profile not saved", slog.Any("error", err))
		return
	}
	r.rep.HeapProfiles = append(r.rep.HeapProfiles, path)
}

// chatPhase runs the chat loop for ChatDuration (less if the run's bound
// is near) and measures the server's CPU and JetStream writes over it.
func (r *run) chatPhase(ctx context.Context) error {
	cfg := r.cfg
	d := cfg.ChatDuration
	if dl, ok := ctx.Deadline(); ok {
		// Leave room for the drain and the close.
		left := time.Until(dl) - min(cfg.ChatTimeout, 15*time.Second) - 5*time.Second
		if left < d {
			d = max(left, 0)
			r.rep.Notes = append(r.rep.Notes, fmt.Sprintf("chat phase cut to %s by the run's time bound", d.Round(time.Second)))
		}
	}
	if d <= 0 {
		return nil
	}
	r.setPhase("chat")
	cp := &ChatPhase{}
	var cpu0 ProcStats
	if r.pid > 0 {
		cpu0, _ = ReadProc(r.pid)
	}
	var js0 map[string]uint64
	if cfg.NATSURL != "" {
		var err error
		if js0, err = jetStreamWrites(ctx, cfg.NATSURL); err != nil {
			r.log.Warn("JetStream not readable", slog.Any("error", err))
		}
	}
	t0 := time.Now()
	results := make([]ChatResult, len(r.workers))
	err := r.all(func(i int, w workerAPI) error {
		res, err := w.Chat(ctx, d)
		results[i] = res
		return err
	})
	wall := time.Since(t0)
	for _, res := range results {
		cp.Chats += res.Chats
		cp.Tokens += res.Tokens
		cp.Deltas += res.Deltas
	}
	cp.Seconds = d.Seconds()
	cp.WallSeconds = wall.Seconds()
	cp.ChatsPerSecond = float64(cp.Chats) / d.Seconds()
	cp.TokensPerSecond = float64(cp.Tokens) / d.Seconds()
	cp.DeltasPerSecond = float64(cp.Deltas) / d.Seconds()
	if r.pid > 0 {
		if cpu1, err := ReadProc(r.pid); err == nil {
			cp.ServerCPUSeconds = (cpu1.CPU - cpu0.CPU).Seconds()
			cp.ServerCores = cp.ServerCPUSeconds / wall.Seconds()
		}
	}
	if js0 != nil {
		if js1, err := jetStreamWrites(context.WithoutCancel(ctx), cfg.NATSURL); err == nil {
			cp.JetStreamWrites = map[string]uint64{}
			var all uint64
			for name, n := range js1 {
				d := n - js0[name]
				cp.JetStreamWrites[name] = d
				all += d
			}
			cp.JetStreamWritesPerSecond = float64(all) / wall.Seconds()
			cp.EventWritesPerSecond = float64(cp.JetStreamWrites[cfg.Stream]) / wall.Seconds()
			if cp.Chats > 0 {
				cp.EventWritesPerChat = float64(cp.JetStreamWrites[cfg.Stream]) / float64(cp.Chats)
			}
		}
	}
	r.rep.Chat = cp
	return err
}

func (r *run) churnPhase(ctx context.Context) error {
	d := r.cfg.Churn
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl) - 15*time.Second; left < d {
			d = max(left, 0)
			r.rep.Notes = append(r.rep.Notes, fmt.Sprintf("churn phase cut to %s by the run's time bound", d.Round(time.Second)))
		}
	}
	if d <= 0 {
		return nil
	}
	r.setPhase("churn")
	ch := &ChurnPhase{}
	results := make([]ChurnResult, len(r.workers))
	err := r.all(func(i int, w workerAPI) error {
		res, err := w.Churn(ctx, d)
		results[i] = res
		return err
	})
	for _, res := range results {
		ch.Cycles = max(ch.Cycles, res.Cycles)
		ch.Opened += res.Opened
		ch.Closed += res.Closed
		ch.Seconds = max(ch.Seconds, res.Elapsed.Seconds())
	}
	if ch.Seconds > 0 {
		ch.OpensPerSecond = float64(ch.Opened) / ch.Seconds
	}
	ch.HeldAtEnd = r.held(ctx)
	if r.pid > 0 {
		if ps, err := ReadProc(r.pid); err == nil {
			ch.Server = &ps
		}
		if r.cfg.PprofURL != "" {
			if rs, err := readPprof(ctx, r.cfg.PprofURL); err == nil {
				ch.Runtime = &rs
			}
		}
	}
	r.rep.Churn = ch
	return err
}

// closeWorkers closes every connection and gathers the reports.
func (r *run) closeWorkers() error {
	if len(r.workers) == 0 {
		return nil
	}
	r.setPhase("close")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	reps := make([]*WorkerReport, len(r.workers))
	err := r.all(func(i int, w workerAPI) error {
		rep, err := w.Close(ctx)
		reps[i] = rep
		return err
	})
	total := &WorkerReport{}
	for _, rep := range reps {
		if rep != nil {
			total.merge(rep)
		}
	}
	r.rep.Client = total
	r.workers = nil
	return err
}

// measureAfter measures the server once every connection is closed and
// Settle has passed, to see whether it returns to where it started.
func (r *run) measureAfter(parent context.Context) {
	if r.pid <= 0 || r.rep.Server == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), r.cfg.Settle+30*time.Second)
	defer cancel()
	_ = sleep(ctx, r.cfg.Settle)
	if ps, err := ReadProc(r.pid); err == nil {
		r.rep.Server.After = &ps
	}
	if r.cfg.PprofURL != "" {
		if rs, err := readPprof(ctx, r.cfg.PprofURL); err == nil {
			r.rep.Server.RuntimeAfter = &rs
		}
	}
}

// startProgress prints a progress line every cfg.Progress until the
// returned function is called.
func (r *run) startProgress() (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(r.cfg.Progress)
		defer t.Stop()
		r.lastAt = time.Now()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				r.printProgress()
			}
		}
	}()
	return func() {
		close(done)
		wg.Wait()
	}
}

func (r *run) printProgress() {
	s := r.snapshot()
	now := time.Now()
	r.progMu.Lock()
	dt := now.Sub(r.lastAt).Seconds()
	tokRate := float64(s.Tokens-r.lastProg.Tokens) / dt
	deltaRate := float64(s.Deltas-r.lastProg.Deltas) / dt
	r.lastProg, r.lastAt = s, now
	phase := r.phase
	r.progMu.Unlock()
	var errs int64
	for _, n := range s.Errors {
		errs += n
	}
	line := fmt.Sprintf("[%6.1fs] %-16s held %d  opens %d  fails %d  chats %d  tok/s %.0f  deltas/s %.0f  errors %d",
		now.Sub(r.start).Seconds(), phase, s.Held, s.Opens, s.OpenFails, s.Chats, tokRate, deltaRate, errs)
	if r.pid > 0 {
		if ps, err := ReadProc(r.pid); err == nil {
			line += fmt.Sprintf("  server rss %s", fmtBytes(float64(ps.RSS)))
		}
	}
	fmt.Fprintln(r.progress, line)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// machine describes this machine for the report.
func machine() Machine {
	m := Machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
				f := strings.Fields(v)
				if len(f) > 0 {
					n, _ := strconv.ParseInt(f[0], 10, 64)
					m.MemBytes = n << 10
				}
			}
		}
	}
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err == nil {
		m.NoFile, m.NoFileHard = rl.Cur, rl.Max
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}
