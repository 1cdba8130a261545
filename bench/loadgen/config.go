package loadgen

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// MaxDuration is the hard cap on one run, whatever Config.Duration says:
// a forgotten load generator must not load a shared machine for long.
const MaxDuration = 30 * time.Minute

// Defaults for the zero values of Config.
const (
	DefaultURL             = "ws://127.0.0.1:8080/v1/ws"
	DefaultDuration        = 2 * time.Minute
	DefaultChatDuration    = 30 * time.Second
	DefaultChatTimeout     = 60 * time.Second
	DefaultSettle          = 2 * time.Second
	DefaultDialConcurrency = 64
	DefaultDialTimeout     = 10 * time.Second
	DefaultPerProc         = 15000
	DefaultPortsPerIP      = 25000
	DefaultProgress        = 5 * time.Second
	DefaultPrompt          = "Tell me a story."
	DefaultStream          = "PARLEY_EVENTS"
)

// Config is one load-generator run. The JSON form is what a coordinator
// sends to its worker processes.
type Config struct {
	// URL is the WebSocket endpoint, ws://127.x.x.x:port/v1/ws. Only
	// loopback targets are accepted. Zero value means DefaultURL.
	URL string `json:"url"`
	// Token is sent as "Authorization: Bearer <token>". Zero value means
	// no header (Parley's auth mode none).
	Token string `json:"token,omitempty"`
	// Conns are the connection counts to reach, in order; after each the
	// server's memory is measured. Zero value means [100].
	Conns []int `json:"conns"`
	// Sessions is how many sessions the connections are spread over
	// (connection i attaches to session i mod Sessions; the first
	// connection of each creates it). Zero value means one per 10
	// connections.
	Sessions int `json:"sessions"`
	// Chats is how many sessions run a chat loop (send, read deltas until
	// the terminal event, send again) during the chat phase. Zero value
	// means no chat phase.
	Chats int `json:"chats"`
	// ChatDuration is how long the chat phase starts new chats. Zero
	// value means DefaultChatDuration (cut to what Duration leaves).
	ChatDuration time.Duration `json:"chat_duration"`
	// ChatTimeout counts a chat with no terminal event after this long as
	// an error and sends the next. Zero value means DefaultChatTimeout.
	ChatTimeout time.Duration `json:"chat_timeout"`
	// Think is the pause between a chat's terminal event and its next
	// send. Zero value means none.
	Think time.Duration `json:"think"`
	// Prompt is the content of every send. Zero value means
	// DefaultPrompt.
	Prompt string `json:"prompt"`
	// Churn is how long the churn phase runs after the last step: every
	// connection is closed and opened again (and attached to its
	// session), over and over. Zero value means no churn phase.
	Churn time.Duration `json:"churn"`
	// Settle is the wait after each step before the server is measured.
	// Zero value means DefaultSettle.
	Settle time.Duration `json:"settle"`
	// Hold is how long each step is held after its measurement. Zero
	// value means none.
	Hold time.Duration `json:"hold"`
	// Duration bounds the whole run (capped at MaxDuration). Zero value
	// means DefaultDuration.
	Duration time.Duration `json:"duration"`
	// DialConcurrency is how many connections are being opened at once
	// per process. Zero value means DefaultDialConcurrency.
	DialConcurrency int `json:"dial_concurrency"`
	// DialTimeout bounds one dial plus handshake. Zero value means
	// DefaultDialTimeout.
	DialTimeout time.Duration `json:"dial_timeout"`
	// SourceIPs are the 127.x.x.x addresses connections come from, in
	// turn. Zero value means 127.0.0.1 alone up to PortsPerIP
	// connections, else as many of 127.0.0.1, 127.0.0.2, ... as needed.
	SourceIPs []string `json:"source_ips,omitempty"`
	// PortsPerIP is how many connections one source address may carry.
	// Zero value means DefaultPortsPerIP (the ephemeral range holds about
	// 28k).
	PortsPerIP int `json:"ports_per_ip"`
	// Procs is how many worker processes share the connections. Zero
	// value means enough that none holds more than PerProc.
	Procs int `json:"procs"`
	// PerProc bounds the connections of one process when Procs is zero.
	// Zero value means DefaultPerProc.
	PerProc int `json:"per_proc"`
	// ServerPID is the server process to measure. Zero value means the
	// process listening on URL's port; -1 means do not measure.
	ServerPID int `json:"server_pid"`
	// NATSURL is the server's NATS (nats://127.x.x.x:port), for counting
	// JetStream writes. Zero value means they are not counted.
	NATSURL string `json:"nats_url,omitempty"`
	// Stream is the JetStream stream whose messages are counted. Zero
	// value means DefaultStream.
	Stream string `json:"stream,omitempty"`
	// PprofURL is the server's net/http/pprof base
	// (http://127.x.x.x:port/debug/pprof), for goroutine and heap counts.
	// Zero value means they are not read.
	PprofURL string `json:"pprof_url,omitempty"`
	// HeapProfileDir receives a heap profile (pprof format, taken after a
	// GC through PprofURL) before the first step and after each one:
	// heap-0.pb.gz, heap-<target>.pb.gz. Zero value means none.
	HeapProfileDir string `json:"heap_profile_dir,omitempty"`
	// Progress is how often a progress line goes to the progress writer.
	// Zero value means DefaultProgress.
	Progress time.Duration `json:"progress"`
	// Label names the run in the report. Zero value means none.
	Label string `json:"label,omitempty"`

	// WorkerCommand builds the command that runs one worker process
	// (which calls ServeWorker on its stdin and stdout). Zero value means
	// workers run in this process, whatever Procs says.
	WorkerCommand func() *exec.Cmd `json:"-"`
	// WorkerStderr receives the workers' logs. Zero value means they are
	// discarded.
	WorkerStderr io.Writer `json:"-"`
	// Logger receives structured logs. Zero value means slog.Default().
	Logger *slog.Logger `json:"-"`
}

// total is the largest connection count of the run.
func (c *Config) total() int {
	n := 0
	for _, v := range c.Conns {
		n = max(n, v)
	}
	return n
}

// setDefaults fills zero values and checks the result.
func (c *Config) setDefaults() error {
	if c.URL == "" {
		c.URL = DefaultURL
	}
	if len(c.Conns) == 0 {
		c.Conns = []int{100}
	}
	prev := 0
	for _, n := range c.Conns {
		if n <= prev {
			return fmt.Errorf("loadgen: connection steps must increase and be positive, got %v", c.Conns)
		}
		prev = n
	}
	if c.Sessions <= 0 {
		c.Sessions = max(1, c.total()/10)
	}
	if c.Chats < 0 || c.Chats > c.Sessions {
		return fmt.Errorf("loadgen: %d chats need as many sessions, have %d", c.Chats, c.Sessions)
	}
	if c.Chats > 0 && c.Sessions > c.total() {
		return fmt.Errorf("loadgen: %d sessions need at least as many connections, have %d", c.Sessions, c.total())
	}
	if c.ChatDuration <= 0 {
		c.ChatDuration = DefaultChatDuration
	}
	if c.ChatTimeout <= 0 {
		c.ChatTimeout = DefaultChatTimeout
	}
	if c.Prompt == "" {
		c.Prompt = DefaultPrompt
	}
	if c.Settle <= 0 {
		c.Settle = DefaultSettle
	}
	if c.Duration <= 0 {
		c.Duration = DefaultDuration
	}
	c.Duration = min(c.Duration, MaxDuration)
	if c.DialConcurrency <= 0 {
		c.DialConcurrency = DefaultDialConcurrency
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.PortsPerIP <= 0 {
		c.PortsPerIP = DefaultPortsPerIP
	}
	if c.PerProc <= 0 {
		c.PerProc = DefaultPerProc
	}
	if c.Procs <= 0 {
		c.Procs = (c.total() + c.PerProc - 1) / c.PerProc
	}
	c.Procs = max(1, min(c.Procs, c.Sessions))
	if c.Stream == "" {
		c.Stream = DefaultStream
	}
	if c.Progress <= 0 {
		c.Progress = DefaultProgress
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return fmt.Errorf("loadgen: target URL: %w", err)
	}
	if u.Scheme != "ws" {
		return fmt.Errorf("loadgen: target URL %q: want ws:// (the load generator speaks plain WebSocket on loopback)", c.URL)
	}
	if err := checkLoopback(u.Host); err != nil {
		return fmt.Errorf("loadgen: target URL: %w", err)
	}
	for _, s := range []struct{ name, raw string }{{"NATS URL", c.NATSURL}, {"pprof URL", c.PprofURL}} {
		if s.raw == "" {
			continue
		}
		u, err := url.Parse(s.raw)
		if err != nil {
			return fmt.Errorf("loadgen: %s: %w", s.name, err)
		}
		if err := checkLoopback(u.Host); err != nil {
			return fmt.Errorf("loadgen: %s: %w", s.name, err)
		}
	}
	if len(c.SourceIPs) == 0 {
		n := (c.total() + c.PortsPerIP - 1) / c.PortsPerIP
		if n > 1 {
			for i := 1; i <= n; i++ {
				c.SourceIPs = append(c.SourceIPs, "127.0.0."+strconv.Itoa(i))
			}
		}
	}
	for _, ip := range c.SourceIPs {
		if !isLoopback127(net.ParseIP(ip)) {
			return fmt.Errorf("loadgen: source address %q: want an address in 127.0.0.0/8", ip)
		}
	}
	return nil
}

// ErrNotLoopback is returned for a target outside 127.0.0.0/8.
var ErrNotLoopback = errors.New("only 127.0.0.0/8 targets are allowed")

// checkLoopback accepts host:port or host where host is "localhost" or an
// IPv4 literal in 127.0.0.0/8. Names are not resolved: what is dialled is
// what was checked.
func checkLoopback(hostport string) error {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	if strings.EqualFold(host, "localhost") || isLoopback127(net.ParseIP(host)) {
		return nil
	}
	return fmt.Errorf("%q: %w", hostport, ErrNotLoopback)
}

func isLoopback127(ip net.IP) bool {
	ip4 := ip.To4()
	return ip4 != nil && ip4[0] == 127
}

// dialHost turns "localhost:port" into "127.0.0.1:port", so that the
// address dialled is the one checked.
func dialHost(hostport string) string {
	h, p, err := net.SplitHostPort(hostport)
	if err == nil && strings.EqualFold(h, "localhost") {
		return net.JoinHostPort("127.0.0.1", p)
	}
	return hostport
}
