package loadgen

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lesismal/nbio"
	"golang.org/x/sys/unix"
)

// epoch is the origin of the monotonic nanosecond clock used on hot paths.
var epoch = time.Now()

func nanotime() int64 { return int64(time.Since(epoch)) }

// Connection states.
const (
	stDialing int32 = iota
	stOpening       // create or attach sent, waiting for its ack
	stOpen          // attached
	stClosing       // closed by the load generator
	stClosed
)

// worker holds one process's share of the connections: those whose
// session s has s mod of == index. Its connections live on one nbio
// engine: after the handshake no goroutine belongs to a connection. It
// owns one ticker goroutine while chatting and transient dialling
// goroutines while opening.
type worker struct {
	cfg    Config
	index  int
	of     int
	log    *slog.Logger
	u      *url.URL
	addr   string
	header http.Header
	engine *nbio.Engine

	sessions []*session // by global index; nil when another worker owns it

	mu      sync.Mutex
	conns   map[int]*conn // open or opening, by global index
	reached int           // global connection target reached so far

	held       atomic.Int64 // attached and not closed
	opens      atomic.Int64 // attached, ever
	openFails  atomic.Int64
	deltas     atomic.Int64 // delta frames received on all connections
	tokens     atomic.Int64 // delta frames received by senders
	chats      atomic.Int64 // chats that reached their terminal event
	unexpected atomic.Int64 // connections the server closed
	errs       errCounter

	ttft     Histogram // send → first delta, on every attached connection
	itl      Histogram // delta → next delta of the same generation, per connection
	dial     Histogram // dial start → WebSocket open
	openAck  Histogram // command sent → create/attach ack
	sendAck  Histogram // send → its ack
	chatTime Histogram // send → terminal event, at the sender

	chatting atomic.Bool
	closed   atomic.Bool
}

// session is one Parley session as the worker sees it.
type session struct {
	idx     int
	id      atomic.Pointer[string] // set by the creator's create ack
	creator atomic.Pointer[conn]   // the connection that sends chat turns

	chat    bool
	active  atomic.Bool  // a send is out and its terminal event has not come
	sendAt  atomic.Int64 // nanotime of the last send
	nextAt  atomic.Int64 // nanotime of the next send; 0 means none planned
	msgs    atomic.Int64
	gotAck  atomic.Bool
	lastErr atomic.Int64 // nanotime of the last send error
}

// sid is the session's id, "" until created.
func (s *session) sid() string {
	if p := s.id.Load(); p != nil {
		return *p
	}
	return ""
}

// conn is one client WebSocket. Its read-side fields are touched only by
// its poller goroutine (nbio calls a connection's handlers one at a time).
type conn struct {
	w     *worker
	idx   int
	sess  *session
	nc    *nbio.Conn
	state atomic.Int32
	batch *batch // the open batch waiting for this connection's ack
	sent  int64  // nanotime the open command was sent

	partial   []byte // a frame split across reads; nil when none
	frag      []byte // a fragmented message being assembled
	fragOp    byte
	curGen    int64
	lastDelta int64
}

// batch counts the connections of one open batch still waiting for their
// ack; done closes when none is left.
type batch struct {
	pending atomic.Int64
	done    chan struct{}
}

func newBatch(n int) *batch {
	b := &batch{done: make(chan struct{})}
	b.pending.Store(int64(n))
	if n == 0 {
		close(b.done)
	}
	return b
}

func (b *batch) finish() {
	if b.pending.Add(-1) == 0 {
		close(b.done)
	}
}

// resolveOpen ends c's wait for its open ack, once.
func (c *conn) resolveOpen(ok bool) {
	next := stClosing
	if ok {
		next = stOpen
	}
	if !c.state.CompareAndSwap(stOpening, next) {
		return
	}
	if ok {
		c.w.held.Add(1)
		c.w.opens.Add(1)
		c.w.openAck.Record(time.Duration(nanotime() - c.sent))
	} else {
		c.w.openFails.Add(1)
	}
	if b := c.batch; b != nil {
		b.finish()
	}
}

func newWorker(cfg Config, index, of int) (*worker, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, err
	}
	w := &worker{
		cfg:      cfg,
		index:    index,
		of:       of,
		log:      cfg.Logger.With(slog.String("component", "loadgen"), slog.Int("worker", index)),
		u:        u,
		addr:     dialHost(u.Host),
		header:   http.Header{},
		sessions: make([]*session, cfg.Sessions),
		conns:    make(map[int]*conn),
	}
	if cfg.Token != "" {
		w.header.Set("Authorization", "Bearer "+cfg.Token)
	}
	for s := range cfg.Sessions {
		if s%of == index {
			w.sessions[s] = &session{idx: s, chat: s < cfg.Chats}
		}
	}
	w.engine = nbio.NewEngine(nbio.Config{
		Name:    "loadgen",
		NPoller: runtime.GOMAXPROCS(0),
	})
	w.engine.OnData(w.onData)
	w.engine.OnClose(w.onClose)
	if err := w.engine.Start(); err != nil {
		return nil, fmt.Errorf("loadgen: start client engine: %w", err)
	}
	return w, nil
}

// mine lists this worker's connection indexes in [from, to): creators
// (index < Sessions) first, since the others attach to their sessions.
func (w *worker) mine(from, to int) (creators, others []int) {
	for i := from; i < to; i++ {
		if w.sessions[i%w.cfg.Sessions] == nil {
			continue
		}
		if i < w.cfg.Sessions {
			creators = append(creators, i)
		} else {
			others = append(others, i)
		}
	}
	return creators, others
}

// Ramp opens this worker's connections up to the global count target and
// waits until each is attached or failed.
func (w *worker) Ramp(ctx context.Context, target int) (Snapshot, error) {
	w.mu.Lock()
	from := w.reached
	w.reached = max(w.reached, target)
	w.mu.Unlock()
	creators, others := w.mine(from, target)
	if err := w.openAll(ctx, creators); err != nil {
		return w.Snapshot(), err
	}
	err := w.openAll(ctx, others)
	return w.Snapshot(), err
}

// openAll opens the connections idx with DialConcurrency dialling
// goroutines and waits for their acks.
func (w *worker) openAll(ctx context.Context, idx []int) error {
	b := newBatch(len(idx))
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range min(w.cfg.DialConcurrency, len(idx)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				w.open(ctx, i, b)
			}
		}()
	}
feed:
	for _, i := range idx {
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	// Every command is out; its ack should follow within a dial timeout.
	t := time.NewTimer(w.cfg.DialTimeout)
	defer t.Stop()
	select {
	case <-b.done:
		return nil
	case <-t.C:
		if n := b.pending.Load(); n > 0 {
			w.errs.add("timeout:open", n)
		}
		return nil
	case <-ctx.Done():
		if n := b.pending.Load(); n > 0 {
			w.errs.add("timeout:open", n)
		}
		return ctx.Err()
	}
}

// open dials connection i, upgrades it, hands it to the engine and sends
// its create or attach. A failure before the command is sent finishes b
// at once; after, the ack (or error, or close) does.
func (w *worker) open(ctx context.Context, i int, b *batch) {
	if ctx.Err() != nil {
		b.finish()
		return
	}
	s := w.sessions[i%w.cfg.Sessions]
	sid := s.sid()
	create := sid == ""
	if create && i >= w.cfg.Sessions {
		w.errs.add("open:no_session", 1)
		w.openFails.Add(1)
		b.finish()
		return
	}
	start := nanotime()
	nbc, rest, err := w.dialWS(ctx, i)
	if err != nil {
		w.log.Debug("open failed", slog.Int("conn", i), slog.Any("error", err))
		w.errs.add(dialErrorKind(err), 1)
		w.openFails.Add(1)
		b.finish()
		return
	}
	w.dial.Record(time.Duration(nanotime() - start))
	c := &conn{w: w, idx: i, sess: s, nc: nbc, batch: b}
	c.state.Store(stOpening)
	if i == s.idx {
		s.creator.Store(c) // the creator's index sends chat turns, also when reopened
	}
	nbc.SetSession(c)
	w.mu.Lock()
	if old := w.conns[i]; old != nil {
		w.log.Warn("connection index reopened while still open", slog.Int("conn", i))
	}
	w.conns[i] = c
	w.mu.Unlock()
	// Bytes that came with the handshake response (a ping the server sent
	// at once) wait for the first read: nothing may be written before
	// the connection is on the engine, and only its poller may parse.
	c.partial = rest
	raceHandoff()
	if _, err := w.engine.AddConn(nbc); err != nil {
		w.errs.add("dial:engine", 1)
		c.resolveOpen(false)
		_ = nbc.Close()
		return
	}
	var cmd []byte
	if create {
		cmd = append(cmd, `{"type":"create","id":"o","title":"loadgen `...)
		cmd = strconv.AppendInt(cmd, int64(s.idx), 10)
		cmd = append(cmd, `"}`...)
	} else {
		cmd = append(cmd, `{"type":"attach","id":"o","session":`...)
		cmd = appendJSONString(cmd, sid)
		cmd = append(cmd, '}')
	}
	c.sent = nanotime()
	c.write(opText, cmd)
}

// dialWS opens the TCP connection from connection i's source address and
// performs the WebSocket handshake; the result is an nbio connection not
// yet added to the engine.
func (w *worker) dialWS(ctx context.Context, i int) (*nbio.Conn, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, w.cfg.DialTimeout)
	defer cancel()
	d := net.Dialer{}
	if n := len(w.cfg.SourceIPs); n > 0 {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(w.cfg.SourceIPs[i%n])}
		// Let connect() pick the port by the whole 4-tuple, so that one
		// source address serves several servers.
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
			})
			return errors.Join(err, serr)
		}
	}
	nc, err := d.DialContext(ctx, "tcp", w.addr)
	if err != nil {
		return nil, nil, fmt.Errorf("dial: %w", err)
	}
	rest, err := handshake(ctx, nc, w.u, w.header)
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("handshake: %w", err)
	}
	nbc, err := nbio.NBConn(nc) // duplicates the descriptor and closes nc
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("dial: %w", err)
	}
	return nbc, rest, nil
}

// dialErrorKind names a dial failure for the error counts.
func dialErrorKind(err error) string {
	var se *statusError
	switch {
	case errors.As(err, &se):
		return "handshake:http_" + strconv.Itoa(se.code)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "dial:no_ports"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return "dial:too_many_files"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "dial:refused"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, syscall.ETIMEDOUT):
		return "dial:timeout"
	case errors.Is(err, errProtocol):
		return "handshake:protocol"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "dial:timeout"
	}
	return "dial:other"
}

// write sends one masked frame. nbio's Write never blocks: what the
// kernel does not take is queued.
func (c *conn) write(op byte, payload []byte) {
	var mask [4]byte
	m := rand.Uint32()
	mask[0], mask[1], mask[2], mask[3] = byte(m), byte(m>>8), byte(m>>16), byte(m>>24)
	buf := appendFrame(make([]byte, 0, len(payload)+14), op, payload, mask)
	if _, err := c.nc.Write(buf); err != nil && c.state.Load() < stClosing {
		c.w.errs.add("write", 1)
	}
}

func (w *worker) onData(nc *nbio.Conn, data []byte) {
	raceHandoffRead()
	c, ok := nc.Session().(*conn)
	if !ok {
		return
	}
	c.feed(data)
}

func (w *worker) onClose(nc *nbio.Conn, err error) {
	c, ok := nc.Session().(*conn)
	if !ok {
		return
	}
	prev := c.state.Swap(stClosed)
	switch prev {
	case stOpening:
		w.openFails.Add(1)
		w.errs.add("open:closed", 1)
		if c.batch != nil {
			c.batch.finish()
		}
		w.unexpected.Add(1)
	case stOpen:
		w.held.Add(-1)
		w.unexpected.Add(1)
		w.errs.add("closed_by_server", 1)
		w.log.Debug("connection closed", slog.Int("conn", c.idx), slog.String("local", nc.LocalAddr().String()), slog.Any("error", err))
	}
	w.mu.Lock()
	if w.conns[c.idx] == c {
		delete(w.conns, c.idx)
	}
	w.mu.Unlock()
}

// feed parses the bytes read from the socket into frames. data is valid
// only during the call.
func (c *conn) feed(data []byte) {
	if len(c.partial) > 0 {
		c.partial = append(c.partial, data...)
		data = c.partial
	}
	for len(data) > 0 {
		h, ok, err := parseHeader(data)
		if err != nil {
			c.protocolError(err)
			return
		}
		if !ok || len(data) < h.size+h.length {
			break
		}
		payload := data[h.size : h.size+h.length]
		if h.masked {
			for i := range payload {
				payload[i] ^= h.mask[i&3]
			}
		}
		data = data[h.size+h.length:]
		if !c.frame(h, payload) {
			return
		}
	}
	switch {
	case len(data) == 0:
		c.partial = nil
	default:
		c.partial = append(c.partial[:0], data...)
	}
}

// frame handles one frame and reports whether reading goes on.
func (c *conn) frame(h frameHeader, payload []byte) bool {
	switch h.op {
	case opText, opBinary:
		if c.frag != nil {
			c.protocolError(fmt.Errorf("%w: new message inside a fragmented one", errProtocol))
			return false
		}
		if !h.fin {
			c.frag = append([]byte(nil), payload...)
			c.fragOp = h.op
			return true
		}
		c.message(payload)
	case opContinuation:
		if c.frag == nil {
			c.protocolError(fmt.Errorf("%w: continuation without a message", errProtocol))
			return false
		}
		c.frag = append(c.frag, payload...)
		if len(c.frag) > maxFrame {
			c.protocolError(fmt.Errorf("%w: message over %d bytes", errProtocol, maxFrame))
			return false
		}
		if h.fin {
			msg := c.frag
			c.frag = nil
			c.message(msg)
		}
	case opPing:
		c.write(opPong, payload)
	case opPong:
	case opClose:
		if c.state.Load() < stClosing {
			code := "none"
			if len(payload) >= 2 {
				code = strconv.Itoa(int(payload[0])<<8 | int(payload[1]))
			}
			c.w.errs.add("close_frame:"+code, 1)
		}
		c.write(opClose, payload[:min(len(payload), 2)])
		_ = c.nc.Close()
		return false
	default:
		c.protocolError(fmt.Errorf("%w: opcode %d", errProtocol, h.op))
		return false
	}
	return true
}

func (c *conn) protocolError(err error) {
	c.w.errs.add("protocol", 1)
	c.w.log.Debug("protocol error", slog.Int("conn", c.idx), slog.Any("error", err))
	_ = c.nc.Close()
}

var (
	kindCompleted   = []byte("generation.completed")
	kindStopped     = []byte("generation.stopped")
	kindFailed      = []byte("generation.failed")
	kindInterrupted = []byte("generation.interrupted")
)

// message handles one Parley frame.
func (c *conn) message(msg []byte) {
	var f frameFields
	if err := scanFrame(msg, &f); err != nil {
		c.protocolError(err)
		return
	}
	w, s := c.w, c.sess
	now := nanotime()
	switch string(f.typ) {
	case "delta":
		w.deltas.Add(1)
		if f.gen != c.curGen {
			c.curGen = f.gen
			if at := s.sendAt.Load(); at > 0 {
				w.ttft.Record(time.Duration(now - at))
			}
		} else {
			w.itl.Record(time.Duration(now - c.lastDelta))
		}
		c.lastDelta = now
		if s.chat && s.creator.Load() == c {
			w.tokens.Add(1)
		}
	case "event":
		if !s.chat || s.creator.Load() != c {
			return
		}
		var failed bool
		switch {
		case bytesEq(f.kind, kindCompleted), bytesEq(f.kind, kindStopped):
		case bytesEq(f.kind, kindFailed), bytesEq(f.kind, kindInterrupted):
			failed = true
		default:
			return
		}
		if !s.active.CompareAndSwap(true, false) {
			return
		}
		if failed {
			w.errs.add(string(f.kind), 1)
		}
		w.chats.Add(1)
		w.chatTime.Record(time.Duration(now - s.sendAt.Load()))
		if w.chatting.Load() {
			if w.cfg.Think <= 0 {
				w.send(s)
			} else {
				s.nextAt.Store(now + int64(w.cfg.Think))
			}
		}
	case "ack":
		switch {
		case len(f.id) == 1 && f.id[0] == 'o':
			if c.state.Load() == stOpening && s.sid() == "" && len(f.session) > 0 {
				id := string(f.session)
				s.id.Store(&id)
			}
			c.resolveOpen(true)
		case len(f.id) > 0 && f.id[0] == 's':
			if s.gotAck.CompareAndSwap(false, true) {
				w.sendAck.Record(time.Duration(now - s.sendAt.Load()))
			}
		}
	case "error":
		code := string(f.code)
		switch {
		case len(f.id) == 1 && f.id[0] == 'o':
			w.errs.add("open:"+code, 1)
			c.resolveOpen(false)
			_ = c.nc.Close()
		case len(f.id) > 0 && f.id[0] == 's':
			w.errs.add("send:"+code, 1)
			if s.active.CompareAndSwap(true, false) {
				// Try again later (busy: the last generation has not
				// ended on the server yet).
				s.lastErr.Store(now)
				if w.chatting.Load() {
					s.nextAt.Store(now + int64(200*time.Millisecond))
				}
			}
		default:
			w.errs.add("error:"+code, 1)
			if c.state.Load() == stOpening {
				c.resolveOpen(false) // the open command itself was refused
				_ = c.nc.Close()
			}
		}
	case "pong":
	case "queued":
		// The reply waits in Parley's line for the model: time to first
		// token includes the wait.
	case "reconnect":
		w.errs.add("reconnect", 1)
	default:
		w.errs.add("unknown_frame", 1)
	}
}

func bytesEq(a, b []byte) bool { return string(a) == string(b) }

// send starts the next chat turn of s from its creator connection.
func (w *worker) send(s *session) {
	c := s.creator.Load()
	if c == nil || c.state.Load() != stOpen {
		w.errs.add("send:no_connection", 1)
		s.nextAt.Store(nanotime() + int64(time.Second))
		return
	}
	n := s.msgs.Add(1)
	b := make([]byte, 0, 128+len(w.cfg.Prompt))
	b = append(b, `{"type":"send","id":"s`...)
	b = strconv.AppendInt(b, n, 10)
	b = append(b, `","session":`...)
	b = appendJSONString(b, s.sid())
	b = append(b, `,"content":`...)
	b = appendJSONString(b, w.cfg.Prompt)
	b = append(b, `,"client_msg_id":"lg-`...)
	b = strconv.AppendInt(b, int64(w.index), 10)
	b = append(b, '-')
	b = strconv.AppendInt(b, n, 10)
	b = append(b, `"}`...)
	s.nextAt.Store(0)
	s.gotAck.Store(false)
	s.sendAt.Store(nanotime())
	s.active.Store(true)
	c.write(opText, b)
}

// ChatResult is what one chat phase did, counted up to the end of its
// duration (the drain of running chats after it is not counted).
type ChatResult struct {
	Elapsed time.Duration `json:"elapsed_ns"`
	Chats   int64         `json:"chats"`
	Tokens  int64         `json:"tokens"`
	Deltas  int64         `json:"deltas"`
}

// Chat runs the chat loop on this worker's chat sessions for d, then
// waits (up to ChatTimeout) for the chats still running to end.
func (w *worker) Chat(ctx context.Context, d time.Duration) (ChatResult, error) {
	var mine []*session
	for _, s := range w.sessions {
		if s != nil && s.chat && s.sid() != "" {
			mine = append(mine, s)
		}
	}
	if len(mine) == 0 {
		return ChatResult{}, nil
	}
	chats0, tokens0, deltas0 := w.chats.Load(), w.tokens.Load(), w.deltas.Load()
	start := nanotime()
	// Spread the first sends over a second so they do not all land in
	// one event-loop turn.
	spacing := int64(time.Second) / int64(len(mine))
	for i, s := range mine {
		s.nextAt.Store(start + int64(i)*spacing + 1)
	}
	w.chatting.Store(true)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	timer := time.NewTimer(d)
	defer timer.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-timer.C:
			break loop
		case <-tick.C:
			w.tickChats(mine)
		}
	}
	w.chatting.Store(false)
	res := ChatResult{
		Elapsed: time.Duration(nanotime() - start),
		Chats:   w.chats.Load() - chats0,
		Tokens:  w.tokens.Load() - tokens0,
		Deltas:  w.deltas.Load() - deltas0,
	}
	// Drain: let running generations end so the next phase starts quiet.
	deadline := time.Now().Add(w.cfg.ChatTimeout)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		busy := false
		for _, s := range mine {
			busy = busy || s.active.Load()
		}
		if !busy {
			break
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
		}
	}
	for _, s := range mine {
		if s.active.Load() {
			w.errs.add("timeout:drain", 1)
		}
	}
	return res, ctx.Err()
}

// tickChats sends planned turns and times out stuck ones.
func (w *worker) tickChats(mine []*session) {
	now := nanotime()
	for _, s := range mine {
		if s.active.Load() {
			if now-s.sendAt.Load() > int64(w.cfg.ChatTimeout) && s.active.CompareAndSwap(true, false) {
				w.errs.add("timeout:chat", 1)
				s.nextAt.Store(now)
			}
			continue
		}
		if at := s.nextAt.Load(); at > 0 && now >= at {
			w.send(s)
		}
	}
}

// ChurnResult is what one churn phase did.
type ChurnResult struct {
	Elapsed time.Duration `json:"elapsed_ns"`
	Cycles  int           `json:"cycles"`
	Opened  int64         `json:"opened"`
	Closed  int64         `json:"closed"`
}

// Churn closes and reopens all this worker's connections, over and over,
// for d; it ends with them open.
func (w *worker) Churn(ctx context.Context, d time.Duration) (ChurnResult, error) {
	start := time.Now()
	opens0 := w.opens.Load()
	var res ChurnResult
	for time.Since(start) < d && ctx.Err() == nil {
		res.Closed += int64(w.closeAll(ctx))
		w.mu.Lock()
		target := w.reached
		w.reached = 0
		w.mu.Unlock()
		if _, err := w.Ramp(ctx, target); err != nil {
			break
		}
		res.Cycles++
	}
	res.Elapsed = time.Since(start)
	res.Opened = w.opens.Load() - opens0
	return res, ctx.Err()
}

// closeAll closes every connection with a close frame and waits (a few
// seconds at most) until the engine reports them closed. It returns how
// many it closed.
func (w *worker) closeAll(ctx context.Context) int {
	w.mu.Lock()
	list := make([]*conn, 0, len(w.conns))
	for _, c := range w.conns {
		list = append(list, c)
	}
	w.mu.Unlock()
	n := 0
	for _, c := range list {
		prev := c.state.Load()
		if prev >= stClosing || !c.state.CompareAndSwap(prev, stClosing) {
			continue
		}
		if prev == stOpen {
			w.held.Add(-1)
		}
		if prev == stOpening && c.batch != nil {
			c.batch.finish()
		}
		c.write(opClose, []byte{0x03, 0xE8}) // 1000 normal closure
		_ = c.nc.Close()
		n++
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		w.mu.Lock()
		left := len(w.conns)
		w.mu.Unlock()
		if left == 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	return n
}

// Snapshot is a worker's counters at one moment.
type Snapshot struct {
	Held       int64            `json:"held"`
	Opens      int64            `json:"opens"`
	OpenFails  int64            `json:"open_fails"`
	Unexpected int64            `json:"closed_by_server"`
	Deltas     int64            `json:"deltas"`
	Tokens     int64            `json:"tokens"`
	Chats      int64            `json:"chats"`
	Errors     map[string]int64 `json:"errors,omitempty"`
}

// Snapshot returns the worker's counters.
func (w *worker) Snapshot() Snapshot {
	return Snapshot{
		Held: w.held.Load(), Opens: w.opens.Load(), OpenFails: w.openFails.Load(),
		Unexpected: w.unexpected.Load(), Deltas: w.deltas.Load(), Tokens: w.tokens.Load(),
		Chats: w.chats.Load(), Errors: w.errs.snapshot(),
	}
}

// PID is this process's id: the worker runs here.
func (w *worker) PID() int { return os.Getpid() }

// FreshSnapshot is Snapshot: an in-process worker's counters are always
// current.
func (w *worker) FreshSnapshot(context.Context) (Snapshot, error) { return w.Snapshot(), nil }

// add sums o into s.
func (s *Snapshot) add(o Snapshot) {
	s.Held += o.Held
	s.Opens += o.Opens
	s.OpenFails += o.OpenFails
	s.Unexpected += o.Unexpected
	s.Deltas += o.Deltas
	s.Tokens += o.Tokens
	s.Chats += o.Chats
	for k, v := range o.Errors {
		if s.Errors == nil {
			s.Errors = map[string]int64{}
		}
		s.Errors[k] += v
	}
}

// WorkerReport is everything a worker measured, sent to the coordinator
// when it closes.
type WorkerReport struct {
	Snapshot Snapshot      `json:"snapshot"`
	TTFT     *HistSnapshot `json:"ttft"`
	ITL      *HistSnapshot `json:"itl"`
	Dial     *HistSnapshot `json:"dial"`
	OpenAck  *HistSnapshot `json:"open_ack"`
	SendAck  *HistSnapshot `json:"send_ack"`
	ChatTime *HistSnapshot `json:"chat_time"`
}

// merge adds o into r.
func (r *WorkerReport) merge(o *WorkerReport) {
	r.Snapshot.add(o.Snapshot)
	for _, p := range []struct {
		dst **HistSnapshot
		src *HistSnapshot
	}{
		{&r.TTFT, o.TTFT}, {&r.ITL, o.ITL}, {&r.Dial, o.Dial},
		{&r.OpenAck, o.OpenAck}, {&r.SendAck, o.SendAck}, {&r.ChatTime, o.ChatTime},
	} {
		if *p.dst == nil {
			*p.dst = &HistSnapshot{}
		}
		(*p.dst).Merge(p.src)
	}
}

// Close closes every connection, stops the engine and returns the
// worker's report. It is safe to call twice.
func (w *worker) Close(ctx context.Context) (*WorkerReport, error) {
	if w.closed.CompareAndSwap(false, true) {
		w.closeAll(ctx)
		w.engine.Stop()
	}
	return &WorkerReport{
		Snapshot: w.Snapshot(),
		TTFT:     w.ttft.Snapshot(), ITL: w.itl.Snapshot(), Dial: w.dial.Snapshot(),
		OpenAck: w.openAck.Snapshot(), SendAck: w.sendAck.Snapshot(), ChatTime: w.chatTime.Snapshot(),
	}, nil
}

// errCounter counts errors by kind.
type errCounter struct {
	mu sync.Mutex
	m  map[string]int64
}

func (e *errCounter) add(kind string, n int64) {
	e.mu.Lock()
	if e.m == nil {
		e.m = map[string]int64{}
	}
	e.m[kind] += n
	e.mu.Unlock()
}

func (e *errCounter) snapshot() map[string]int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.m) == 0 {
		return nil
	}
	out := make(map[string]int64, len(e.m))
	for k, v := range e.m {
		out[k] = v
	}
	return out
}
