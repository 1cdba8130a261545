package loadgen

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the outcome of one run.
type Report struct {
	Label     string    `json:"label,omitempty"`
	Target    string    `json:"target"`
	Started   time.Time `json:"started"`
	Elapsed   float64   `json:"elapsed_s"`
	Machine   Machine   `json:"machine"`
	Conns     []int     `json:"conns"`
	Sessions  int       `json:"sessions"`
	Chats     int       `json:"chats"`
	Procs     int       `json:"procs"`
	SourceIPs []string  `json:"source_ips,omitempty"`

	// Server is the server process as /proc (and pprof, when given) saw
	// it; nil when it was not found.
	Server *ServerInfo `json:"server,omitempty"`
	// Steps has one entry per connection step, measured after Settle.
	Steps []Step      `json:"steps"`
	Chat  *ChatPhase  `json:"chat,omitempty"`
	Churn *ChurnPhase `json:"churn,omitempty"`
	// Client is what the load generator's connections saw, over the
	// whole run.
	Client *WorkerReport `json:"client"`
	// HeapProfiles are the server heap profiles saved (HeapProfileDir).
	HeapProfiles []string `json:"heap_profiles,omitempty"`
	Notes        []string `json:"notes,omitempty"`
}

// Machine is the machine the run ran on.
type Machine struct {
	Cores      int    `json:"cores"`
	MemBytes   int64  `json:"mem_bytes"`
	NoFile     uint64 `json:"ulimit_n"`
	NoFileHard uint64 `json:"ulimit_n_hard"`
	Kernel     string `json:"kernel"`
	GoVersion  string `json:"go"`
}

// ServerInfo is the measured server before and after the run.
type ServerInfo struct {
	PID           int           `json:"pid"`
	Before        ProcStats     `json:"before"`
	After         *ProcStats    `json:"after,omitempty"` // all connections closed, after Settle
	RuntimeBefore *RuntimeStats `json:"runtime_before,omitempty"`
	RuntimeAfter  *RuntimeStats `json:"runtime_after,omitempty"`
}

// Step is the server holding one step's connections.
type Step struct {
	Target         int        `json:"target"`
	Held           int64      `json:"held"`
	OpenSeconds    float64    `json:"open_s"`
	OpensPerSecond float64    `json:"opens_per_s"`
	Server         *ProcStats `json:"server,omitempty"`
	// RSSPerConn is (VmRSS now − VmRSS before the run) / held, bytes.
	RSSPerConn float64 `json:"rss_per_conn_bytes"`
	// AnonPerConn is the same for RssAnon.
	AnonPerConn       float64       `json:"anon_per_conn_bytes"`
	Runtime           *RuntimeStats `json:"runtime,omitempty"`
	HeapPerConn       float64       `json:"heap_per_conn_bytes,omitempty"`
	GoroutinesPerConn float64       `json:"goroutines_per_conn,omitempty"`
}

// ChatPhase is the chat loop's throughput and the server's cost of it.
type ChatPhase struct {
	Seconds         float64 `json:"duration_s"`
	WallSeconds     float64 `json:"wall_s"` // with the drain of the last chats
	Chats           int64   `json:"chats"`
	Tokens          int64   `json:"tokens"` // deltas received by the senders
	Deltas          int64   `json:"deltas"` // deltas received by all connections
	ChatsPerSecond  float64 `json:"chats_per_s"`
	TokensPerSecond float64 `json:"tokens_per_s"`
	DeltasPerSecond float64 `json:"deltas_per_s"`
	// ServerCPUSeconds is user+system CPU over the wall time.
	ServerCPUSeconds float64 `json:"server_cpu_s,omitempty"`
	ServerCores      float64 `json:"server_cores,omitempty"`
	// JetStreamWrites are messages written per stream over the wall time.
	JetStreamWrites          map[string]uint64 `json:"jetstream_writes,omitempty"`
	JetStreamWritesPerSecond float64           `json:"jetstream_writes_per_s,omitempty"`
	EventWritesPerSecond     float64           `json:"event_writes_per_s,omitempty"`
	EventWritesPerChat       float64           `json:"event_writes_per_chat,omitempty"`
}

// ChurnPhase is the close-and-reopen loop.
type ChurnPhase struct {
	Seconds        float64       `json:"duration_s"`
	Cycles         int           `json:"cycles"`
	Opened         int64         `json:"opened"`
	Closed         int64         `json:"closed"`
	OpensPerSecond float64       `json:"opens_per_s"`
	HeldAtEnd      int64         `json:"held_at_end"`
	Server         *ProcStats    `json:"server,omitempty"`
	Runtime        *RuntimeStats `json:"runtime,omitempty"`
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteText writes the report for people.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	title := "parley loadgen"
	if r.Label != "" {
		title += ": " + r.Label
	}
	fmt.Fprintf(&b, "%s → %s\n", title, r.Target)
	m := r.Machine
	fmt.Fprintf(&b, "machine: %d cores, %s, ulimit -n %d (hard %d), kernel %s, %s\n",
		m.Cores, fmtBytes(float64(m.MemBytes)), m.NoFile, m.NoFileHard, m.Kernel, m.GoVersion)
	fmt.Fprintf(&b, "run: %.1fs, connections %v over %d sessions, %d chats, %d client process(es)",
		r.Elapsed, r.Conns, r.Sessions, r.Chats, r.Procs)
	if len(r.SourceIPs) > 0 {
		fmt.Fprintf(&b, ", source addresses %s", strings.Join(r.SourceIPs, " "))
	}
	b.WriteString("\n")
	if s := r.Server; s != nil {
		fmt.Fprintf(&b, "server pid %d before: rss %s (anon %s), %d threads, %d fds",
			s.PID, fmtBytes(float64(s.Before.RSS)), fmtBytes(float64(s.Before.RSSAnon)), s.Before.Threads, s.Before.FDs)
		if rb := s.RuntimeBefore; rb != nil {
			fmt.Fprintf(&b, ", %d goroutines, heap %s", rb.Goroutines, fmtBytes(float64(rb.HeapInuse)))
		}
		b.WriteString("\n")
	}
	if len(r.Steps) > 0 {
		b.WriteString("\n")
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "target\theld\topen s\topens/s\tserver rss\trss/conn\tanon/conn\theap/conn\tgoroutines/conn\tfds\t")
		for _, st := range r.Steps {
			rss, rpc, apc, hpc, gpc, fds := "-", "-", "-", "-", "-", "-"
			if st.Server != nil {
				rss = fmtBytes(float64(st.Server.RSS))
				rpc = fmtBytes(st.RSSPerConn)
				apc = fmtBytes(st.AnonPerConn)
				fds = fmt.Sprint(st.Server.FDs)
			}
			if st.Runtime != nil {
				hpc = fmtBytes(st.HeapPerConn)
				gpc = fmt.Sprintf("%.2f", st.GoroutinesPerConn)
			}
			fmt.Fprintf(tw, "%d\t%d\t%.2f\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
				st.Target, st.Held, st.OpenSeconds, st.OpensPerSecond, rss, rpc, apc, hpc, gpc, fds)
		}
		tw.Flush()
	}
	if c := r.Chat; c != nil {
		fmt.Fprintf(&b, "\nchat phase %.0fs (wall %.1fs): %d chats (%.1f/s), %d tokens (%.0f/s), %d deltas delivered (%.0f/s)\n",
			c.Seconds, c.WallSeconds, c.Chats, c.ChatsPerSecond, c.Tokens, c.TokensPerSecond, c.Deltas, c.DeltasPerSecond)
		if c.ServerCPUSeconds > 0 {
			fmt.Fprintf(&b, "server CPU: %.1fs = %.2f cores\n", c.ServerCPUSeconds, c.ServerCores)
		}
		if c.JetStreamWrites != nil {
			fmt.Fprintf(&b, "JetStream writes: %.0f/s in all, %.0f/s to the event stream, %.1f events per chat %v\n",
				c.JetStreamWritesPerSecond, c.EventWritesPerSecond, c.EventWritesPerChat, c.JetStreamWrites)
		}
	}
	if c := r.Churn; c != nil {
		fmt.Fprintf(&b, "\nchurn %.0fs: %d cycles, %d opened (%.0f/s), %d closed, %d held at the end",
			c.Seconds, c.Cycles, c.Opened, c.OpensPerSecond, c.Closed, c.HeldAtEnd)
		if c.Server != nil {
			fmt.Fprintf(&b, "; server rss %s, %d threads, %d fds", fmtBytes(float64(c.Server.RSS)), c.Server.Threads, c.Server.FDs)
		}
		if c.Runtime != nil {
			fmt.Fprintf(&b, ", %d goroutines, heap %s", c.Runtime.Goroutines, fmtBytes(float64(c.Runtime.HeapInuse)))
		}
		b.WriteString("\n")
	}
	if cl := r.Client; cl != nil {
		b.WriteString("\nclient-observed latency\n")
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		for _, h := range []struct {
			name string
			h    *HistSnapshot
		}{
			{"time to first token", cl.TTFT}, {"inter-token", cl.ITL}, {"send → ack", cl.SendAck},
			{"send → terminal event", cl.ChatTime}, {"dial + handshake", cl.Dial}, {"create/attach → ack", cl.OpenAck},
		} {
			fmt.Fprintf(tw, "  %s\t%s\n", h.name, h.h.Summary())
		}
		tw.Flush()
		s := cl.Snapshot
		fmt.Fprintf(&b, "connections: %d opened, %d failed to open, %d closed by the server, %d held at the end\n",
			s.Opens, s.OpenFails, s.Unexpected, s.Held)
		if len(s.Errors) > 0 {
			b.WriteString("errors:")
			for _, k := range slices.Sorted(maps.Keys(s.Errors)) {
				fmt.Fprintf(&b, " %s=%d", k, s.Errors[k])
			}
			b.WriteString("\n")
		} else {
			b.WriteString("errors: none\n")
		}
	}
	if s := r.Server; s != nil && s.After != nil {
		fmt.Fprintf(&b, "server after closing all: rss %s (anon %s; %+.1f MiB vs before), %d threads, %d fds",
			fmtBytes(float64(s.After.RSS)), fmtBytes(float64(s.After.RSSAnon)),
			float64(s.After.RSS-s.Before.RSS)/(1<<20), s.After.Threads, s.After.FDs)
		if ra := s.RuntimeAfter; ra != nil {
			fmt.Fprintf(&b, ", %d goroutines, heap %s", ra.Goroutines, fmtBytes(float64(ra.HeapInuse)))
		}
		b.WriteString("\n")
	}
	if len(r.HeapProfiles) > 0 {
		fmt.Fprintf(&b, "heap profiles: %s\n", strings.Join(r.HeapProfiles, " "))
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "note: %s\n", n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func fmtBytes(v float64) string {
	neg := ""
	if v < 0 {
		neg, v = "-", -v
	}
	switch {
	case v >= 1<<30:
		return fmt.Sprintf("%s%.2f GiB", neg, v/(1<<30))
	case v >= 1<<20:
		return fmt.Sprintf("%s%.1f MiB", neg, v/(1<<20))
	case v >= 1<<10:
		return fmt.Sprintf("%s%.2f KiB", neg, v/(1<<10))
	default:
		return fmt.Sprintf("%s%.0f B", neg, v)
	}
}
