package loadgen

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"sync"
	"time"
)

// The coordinator talks to each worker process over its stdin and stdout,
// one JSON object a line: requests carry an id, and each gets exactly one
// reply with that id. Requests run concurrently in the worker (a snapshot
// is answered while a ramp runs). When its stdin closes, a worker closes
// its connections and exits.

type request struct {
	ID       int           `json:"id"`
	Op       string        `json:"op"`
	Config   *Config       `json:"config,omitempty"`
	Index    int           `json:"index,omitempty"`
	Of       int           `json:"of,omitempty"`
	Target   int           `json:"target,omitempty"`
	Duration time.Duration `json:"duration,omitempty"`
}

type reply struct {
	ID       int           `json:"id"`
	Error    string        `json:"error,omitempty"`
	Snapshot *Snapshot     `json:"snapshot,omitempty"`
	Chat     *ChatResult   `json:"chat,omitempty"`
	Churn    *ChurnResult  `json:"churn,omitempty"`
	Report   *WorkerReport `json:"report,omitempty"`
}

// workerAPI is a worker as the coordinator drives it: in this process or
// in another.
type workerAPI interface {
	Ramp(ctx context.Context, target int) (Snapshot, error)
	Chat(ctx context.Context, d time.Duration) (ChatResult, error)
	Churn(ctx context.Context, d time.Duration) (ChurnResult, error)
	// Snapshot may return slightly old counters (progress lines);
	// FreshSnapshot returns current ones (measurements).
	Snapshot() Snapshot
	FreshSnapshot(ctx context.Context) (Snapshot, error)
	Close(ctx context.Context) (*WorkerReport, error)
	// PID is the process the worker runs in.
	PID() int
}

var _ workerAPI = (*worker)(nil)
var _ workerAPI = (*remoteWorker)(nil)

// ServeWorker runs one worker process: it reads requests from r and
// writes replies to w until r ends, an "init" request first. The worker
// lives at most MaxDuration plus a minute. log receives its logs (nil
// means slog.Default()).
func ServeWorker(ctx context.Context, r io.Reader, w io.Writer, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(ctx, MaxDuration+time.Minute)
	defer cancel()
	var (
		wk     *worker
		wmu    sync.Mutex
		wg     sync.WaitGroup
		enc    = json.NewEncoder(w)
		encMu  sync.Mutex
		closed = make(chan struct{})
	)
	write := func(rep reply) {
		encMu.Lock()
		defer encMu.Unlock()
		_ = enc.Encode(rep)
	}
	defer func() {
		cancel()
		wg.Wait()
		wmu.Lock()
		if wk != nil {
			_, _ = wk.Close(context.Background())
		}
		wmu.Unlock()
	}()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	lines := make(chan []byte)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(lines)
		for sc.Scan() {
			select {
			case lines <- append([]byte(nil), sc.Bytes()...):
			case <-ctx.Done():
				return
			}
		}
	}()
	for {
		var line []byte
		var ok bool
		select {
		case line, ok = <-lines:
		case <-ctx.Done():
			return ctx.Err()
		case <-closed:
			return nil
		}
		if !ok {
			return nil // stdin closed: the coordinator is gone
		}
		var req request
		if err := json.Unmarshal(line, &req); err != nil {
			return fmt.Errorf("loadgen worker: bad request: %w", err)
		}
		if req.Op == "init" {
			if req.Config == nil {
				write(reply{ID: req.ID, Error: "init without config"})
				continue
			}
			req.Config.Logger = log
			nw, err := newWorker(*req.Config, req.Index, req.Of)
			rep := reply{ID: req.ID}
			if err != nil {
				rep.Error = err.Error()
			} else {
				wmu.Lock()
				wk = nw
				wmu.Unlock()
			}
			write(rep)
			continue
		}
		wmu.Lock()
		cur := wk
		wmu.Unlock()
		if cur == nil {
			write(reply{ID: req.ID, Error: "not initialized"})
			continue
		}
		wg.Add(1)
		go func(req request) {
			defer wg.Done()
			rep := reply{ID: req.ID}
			var err error
			switch req.Op {
			case "ramp":
				var s Snapshot
				s, err = cur.Ramp(ctx, req.Target)
				rep.Snapshot = &s
			case "chat":
				var c ChatResult
				c, err = cur.Chat(ctx, req.Duration)
				rep.Chat = &c
			case "churn":
				var c ChurnResult
				c, err = cur.Churn(ctx, req.Duration)
				rep.Churn = &c
			case "snapshot":
				s := cur.Snapshot()
				rep.Snapshot = &s
			case "close":
				rep.Report, err = cur.Close(ctx)
				defer func() {
					select {
					case <-closed:
					default:
						close(closed)
					}
				}()
			default:
				err = fmt.Errorf("unknown op %q", req.Op)
			}
			if err != nil {
				rep.Error = err.Error()
			}
			write(rep)
		}(req)
	}
}

// remoteWorker drives a worker process.
type remoteWorker struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	encMu sync.Mutex
	enc   *json.Encoder

	mu      sync.Mutex
	nextID  int
	waiting map[int]chan reply
	last    Snapshot // the latest snapshot, refreshed in the background
	done    chan struct{}
	readErr error
	bg      sync.WaitGroup // background snapshot requests
}

// startRemote starts a worker process and initializes it.
func startRemote(ctx context.Context, cfg Config, index, of int) (*remoteWorker, error) {
	cmd := cfg.WorkerCommand()
	cmd.Stderr = cfg.WorkerStderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("loadgen: start worker %d: %w", index, err)
	}
	rw := &remoteWorker{cmd: cmd, stdin: stdin, enc: json.NewEncoder(stdin), waiting: map[int]chan reply{}, done: make(chan struct{})}
	go rw.read(stdout) // ends when the process's stdout closes
	if _, err := rw.call(ctx, request{Op: "init", Config: &cfg, Index: index, Of: of}); err != nil {
		rw.kill()
		return nil, fmt.Errorf("loadgen: worker %d: %w", index, err)
	}
	return rw, nil
}

func (rw *remoteWorker) read(stdout io.Reader) {
	defer close(rw.done)
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		var rep reply
		if err := json.Unmarshal(sc.Bytes(), &rep); err != nil {
			continue
		}
		rw.mu.Lock()
		ch := rw.waiting[rep.ID]
		delete(rw.waiting, rep.ID)
		if rep.Snapshot != nil {
			rw.last = *rep.Snapshot
		}
		rw.mu.Unlock()
		if ch != nil {
			ch <- rep
		}
	}
	rw.mu.Lock()
	rw.readErr = errors.Join(sc.Err(), errors.New("worker process ended"))
	rw.mu.Unlock()
}

func (rw *remoteWorker) call(ctx context.Context, req request) (reply, error) {
	ch := make(chan reply, 1)
	rw.mu.Lock()
	rw.nextID++
	req.ID = rw.nextID
	rw.waiting[req.ID] = ch
	rw.mu.Unlock()
	rw.encMu.Lock()
	err := rw.enc.Encode(req)
	rw.encMu.Unlock()
	if err != nil {
		return reply{}, fmt.Errorf("send %s: %w", req.Op, err)
	}
	select {
	case rep := <-ch:
		if rep.Error != "" {
			return rep, errors.New(rep.Error)
		}
		return rep, nil
	case <-rw.done:
		rw.mu.Lock()
		defer rw.mu.Unlock()
		return reply{}, rw.readErr
	case <-ctx.Done():
		return reply{}, ctx.Err()
	}
}

func (rw *remoteWorker) Ramp(ctx context.Context, target int) (Snapshot, error) {
	rep, err := rw.call(ctx, request{Op: "ramp", Target: target})
	if rep.Snapshot != nil {
		return *rep.Snapshot, err
	}
	return Snapshot{}, err
}

func (rw *remoteWorker) Chat(ctx context.Context, d time.Duration) (ChatResult, error) {
	rep, err := rw.call(ctx, request{Op: "chat", Duration: d})
	if rep.Chat != nil {
		return *rep.Chat, err
	}
	return ChatResult{}, err
}

func (rw *remoteWorker) Churn(ctx context.Context, d time.Duration) (ChurnResult, error) {
	rep, err := rw.call(ctx, request{Op: "churn", Duration: d})
	if rep.Churn != nil {
		return *rep.Churn, err
	}
	return ChurnResult{}, err
}

// PID is the worker process's id.
func (rw *remoteWorker) PID() int { return rw.cmd.Process.Pid }

// FreshSnapshot asks the worker for its counters and waits.
func (rw *remoteWorker) FreshSnapshot(ctx context.Context) (Snapshot, error) {
	rep, err := rw.call(ctx, request{Op: "snapshot"})
	if rep.Snapshot != nil {
		return *rep.Snapshot, err
	}
	return Snapshot{}, err
}

// Snapshot returns the last snapshot received and asks for a fresh one
// in the background, so that progress lines never wait on a worker.
func (rw *remoteWorker) Snapshot() Snapshot {
	rw.mu.Lock()
	s := rw.last
	rw.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	rw.bg.Add(1)
	go func() {
		defer rw.bg.Done()
		defer cancel()
		_, _ = rw.call(ctx, request{Op: "snapshot"})
	}()
	return s
}

// Close asks the worker for its report and waits for the process to end
// (killing it after 30 s).
func (rw *remoteWorker) Close(ctx context.Context) (*WorkerReport, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rep, err := rw.call(ctx, request{Op: "close"})
	_ = rw.stdin.Close()
	select {
	case <-rw.done: // the process closed its stdout: it is exiting
	case <-ctx.Done():
		rw.kill()
		<-rw.done
	}
	if werr := rw.cmd.Wait(); err == nil && werr != nil {
		err = fmt.Errorf("worker process: %w", werr)
	}
	rw.bg.Wait()
	if rep.Report == nil && err == nil {
		err = errors.New("worker sent no report")
	}
	return rep.Report, err
}

func (rw *remoteWorker) kill() {
	_ = rw.stdin.Close()
	if rw.cmd.Process != nil {
		_ = rw.cmd.Process.Kill()
	}
}
