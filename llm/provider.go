package llm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Role of a chat message.
const (
	RoleSystem    = "system"
	RoleUser      = "user"
	RoleAssistant = "assistant"
)

// Message is one turn of the context sent upstream.
type Message struct {
	Role    string
	Content string
}

// Request is one generation request.
type Request struct {
	Model    string
	Messages []Message
	// MaxTokens caps the reply's length in tokens (Ollama's num_predict,
	// OpenAI's max_tokens). Zero value means the model's own default.
	MaxTokens int
}

// Delta is a piece of streamed output. Text is reply text; Thinking is
// reasoning text, which is never part of the reply. Text may end in the
// middle of a UTF-8 sequence if the upstream split one; the caller
// reassembles (see UTF8Carry).
type Delta struct {
	Text     string
	Thinking string
}

// Usage counts tokens as the upstream reported them.
type Usage struct {
	PromptTokens     int
	CompletionTokens int
}

// Result describes a stream that ended with the upstream's final record.
type Result struct {
	DoneReason string
	Usage      Usage
}

// ModelInfo describes one model a provider offers.
type ModelInfo struct {
	// Name is what a Request's Model says ("llama3.2:latest", "gpt-4o").
	Name string `json:"name"`
	// ContextLength is the model's context window in tokens, when the
	// server says; zero means unknown.
	ContextLength int `json:"context_length,omitempty"`
}

// Provider streams chat completions from a model server.
//
// Stream calls onDelta from the calling goroutine, in order, for each piece
// of output, and returns when the stream has ended. It returns a nil error
// only when the upstream signalled completion (Ollama's done record,
// OpenAI's finish_reason or [DONE]); a stream cut before that is an *Error
// with CodeUpstreamError. When ctx is cancelled the upstream request is
// cancelled and Stream returns an error matching ctx.Err().
type Provider interface {
	// Name is the provider's name as recorded in generation.started
	// ("ollama", "openai", "sim").
	Name() string
	Stream(ctx context.Context, req Request, onDelta func(Delta)) (Result, error)
	// Check reports whether the model server answers.
	Check(ctx context.Context) error
	// Models lists the models the server offers (Ollama /api/tags, OpenAI
	// /v1/models).
	Models(ctx context.Context) ([]ModelInfo, error)
}

// ContextSizer is implemented by providers that can look up one model's
// context window (Ollama's /api/show). It returns zero when the server
// does not say.
type ContextSizer interface {
	ContextLength(ctx context.Context, model string) (int, error)
}

// SameModel reports whether two model names name the same model, the way
// Ollama matches them: case-insensitively, with "x" meaning "x:latest".
func SameModel(a, b string) bool { return ModelKey(a) == ModelKey(b) }

// ModelKey is the form of a model name that SameModel compares: lower
// case, with ":latest" added when there is no tag.
func ModelKey(name string) string {
	if !strings.Contains(name, ":") {
		name += ":latest"
	}
	return strings.ToLower(name)
}

// Error codes (PROTOCOL.md section 3) for upstream failures.
const (
	// CodeUpstreamUnavailable: the model server could not be reached or
	// refused the request before producing output because it is overloaded.
	CodeUpstreamUnavailable = "upstream_unavailable"
	// CodeUpstreamError: the model server answered with an error, or its
	// stream ended without its final record.
	CodeUpstreamError = "upstream_error"
)

// Error is a coded upstream failure.
type Error struct {
	Code    string // CodeUpstreamUnavailable or CodeUpstreamError
	Message string // human-readable, safe to show to the user
	Err     error  // underlying cause, may be nil
	// Retryable marks a failure that happened before any output and may
	// pass on a later try: connection refused, HTTP 429, HTTP 5xx.
	// A stream that produced output is never retryable.
	Retryable bool
	// RetryAfter is the server's Retry-After hint; zero means none.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("llm: %s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("llm: %s: %s", e.Code, e.Message)
}

// Unwrap returns the underlying cause.
func (e *Error) Unwrap() error { return e.Err }

// ErrIncomplete is the cause of an Error whose stream ended without the
// upstream's final record.
var ErrIncomplete = errors.New("stream ended without its final record")

// IsRetryable reports whether err is an *Error marked Retryable.
func IsRetryable(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Retryable
}

// CodeOf returns the upstream error code of err, or "" when err is not an
// *Error.
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}
