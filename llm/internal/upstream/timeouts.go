package upstream

import (
	"fmt"
	"time"

	"github.com/parleyhq/parley/llm"
)

// Defaults of the four stream limits, shared by every provider (and by
// the config package's PARLEY_UPSTREAM_* defaults).
const (
	DefaultConnectTimeout    = 5 * time.Second
	DefaultFirstTokenTimeout = 5 * time.Minute
	DefaultIdleTimeout       = 2 * time.Minute
	DefaultTotalTimeout      = 100 * time.Minute
)

// Timeouts are a provider's four limits. See the providers' Config types
// for what each bounds.
type Timeouts struct {
	Connect, FirstToken, Idle, Total time.Duration
}

// ApplyDefaults replaces each zero limit with its default and checks the
// result: no limit may be negative, and Total may not be less than
// FirstToken. prefix names the provider in errors ("ollama", "openai");
// the field names in errors are those of the providers' Config types.
func (t *Timeouts) ApplyDefaults(prefix string) error {
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"ConnectTimeout", &t.Connect, DefaultConnectTimeout},
		{"FirstTokenTimeout", &t.FirstToken, DefaultFirstTokenTimeout},
		{"IdleTimeout", &t.Idle, DefaultIdleTimeout},
		{"TotalTimeout", &t.Total, DefaultTotalTimeout},
	} {
		if *d.v < 0 {
			return fmt.Errorf("%s: %s is negative (%v)", prefix, d.name, *d.v)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if t.Total < t.FirstToken {
		return fmt.Errorf("%s: TotalTimeout (%v) is less than FirstTokenTimeout (%v)", prefix, t.Total, t.FirstToken)
	}
	return nil
}

// Causes names the errors a provider's timers cancel a stream with.
type Causes struct {
	FirstToken, Idle, Total error
}

// TimeoutError is the error of a stream cut by one of a provider's
// timers: cause (one of c's), with a message naming the limit; server
// names the model server ("Ollama", "the model server").
func TimeoutError(server string, cause error, c Causes, t Timeouts) error {
	var msg string
	switch cause {
	case c.FirstToken:
		msg = fmt.Sprintf("%s produced no token within %v (first-token timeout)", server, t.FirstToken)
	case c.Idle:
		msg = fmt.Sprintf("%s produced no token for %v (idle timeout)", server, t.Idle)
	case c.Total:
		msg = fmt.Sprintf("generation took longer than %v (total timeout)", t.Total)
	default:
		msg = "generation cancelled by a timeout"
	}
	return &llm.Error{Code: llm.CodeUpstreamError, Message: msg, Err: cause}
}

// MaxMessageLen caps the server-provided text copied into an
// llm.Error's Message.
const MaxMessageLen = 512

// ClipMessage shortens a server-provided message to MaxMessageLen bytes
// on a character boundary, marking the cut with "…".
func ClipMessage(s string) string {
	if len(s) <= MaxMessageLen {
		return s
	}
	return llm.Truncate(s, MaxMessageLen) + "…"
}
