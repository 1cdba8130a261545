package openai

import (
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/parleyhq/parley/llm"
	"github.com/parleyhq/parley/llm/internal/upstream"
)

// Causes of an *llm.Error returned when one of the Provider's own timers
// cancelled a generation.
var (
	ErrFirstTokenTimeout = errors.New("openai: no chunk within the first-token timeout")
	ErrIdleTimeout       = errors.New("openai: no chunk within the idle timeout")
	ErrTotalTimeout      = errors.New("openai: generation exceeded the total timeout")
)

// StatusError is the cause of an *llm.Error for a request the server
// answered with an HTTP error status.
type StatusError struct {
	StatusCode int
	Status     string // e.g. "429 Too Many Requests"
	// Message, Type and Code come from the server's error body
	// ({"error":{"message","type","code"}}) when it had one.
	Message, Type, Code string
}

func (e *StatusError) Error() string {
	if e.Message == "" {
		return e.Status
	}
	return e.Status + ": " + e.Message
}

// StreamError is the cause of an *llm.Error for an error object the
// server sent inside a stream (`data: {"error":{…}}`).
type StreamError struct {
	Message, Type, Code string
}

func (e *StreamError) Error() string { return "error in stream: " + e.Message }

// maxErrorBody caps how much of an error response's body is read.
const maxErrorBody = 64 << 10

// timeoutError builds the error for a generation cut by one of our timers.
func timeoutError(cause error, cfg *Config) error {
	return upstream.TimeoutError("the model server", cause,
		upstream.Causes{FirstToken: ErrFirstTokenTimeout, Idle: ErrIdleTimeout, Total: ErrTotalTimeout},
		upstream.Timeouts{FirstToken: cfg.FirstTokenTimeout, Idle: cfg.IdleTimeout, Total: cfg.TotalTimeout})
}

// isOurTimeout reports whether cause is one of the Provider's timers.
func isOurTimeout(cause error) bool {
	return errors.Is(cause, ErrFirstTokenTimeout) || errors.Is(cause, ErrIdleTimeout) || errors.Is(cause, ErrTotalTimeout)
}

// transportError maps a failed http.Client.Do (no response at all: dial,
// DNS, refused, TLS, reset before the status line). The caller has ruled
// out its own cancellation and our timers.
func (p *Provider) transportError(err error) error {
	msg := "cannot reach the model server at " + p.redacted
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		msg += fmt.Sprintf(" (no connection within %v)", p.cfg.ConnectTimeout)
	}
	return &llm.Error{Code: llm.CodeUpstreamUnavailable, Message: msg, Err: err, Retryable: true}
}

// statusError maps an HTTP error status and its (clipped) body.
func statusError(resp *http.Response, body []byte, now time.Time) error {
	se := &StatusError{StatusCode: resp.StatusCode, Status: resp.Status}
	if se.Status == "" {
		se.Status = fmt.Sprintf("%d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	se.Message, se.Type, se.Code = errorBodyMessage(resp.Header.Get("Content-Type"), body)

	code := llm.CodeUpstreamError
	retryable := false
	switch s := resp.StatusCode; {
	case s == http.StatusTooManyRequests:
		code, retryable = llm.CodeUpstreamUnavailable, true
		// OpenAI answers 429 for an exhausted quota too, which no retry
		// cures.
		if se.Code == "insufficient_quota" || se.Type == "insufficient_quota" {
			code, retryable = llm.CodeUpstreamError, false
		}
	case s == http.StatusRequestTimeout, s == http.StatusBadGateway, s == http.StatusServiceUnavailable,
		s == http.StatusGatewayTimeout, s == 529: // 529: "overloaded" at some hosted APIs
		code, retryable = llm.CodeUpstreamUnavailable, true
	case s == http.StatusConflict, s >= 500:
		retryable = true
	}
	// OpenAI's servers may say so explicitly; their SDKs obey.
	switch resp.Header.Get("X-Should-Retry") {
	case "true":
		retryable = true
	case "false":
		retryable = false
	}
	e := &llm.Error{Code: code, Message: upstream.ClipMessage(se.Error()), Err: se, Retryable: retryable}
	if retryable {
		e.RetryAfter = upstream.RetryAfter(resp.Header, now)
	}
	return e
}

// errorBodyMessage extracts the message of an error body: OpenAI's
// {"error":{"message","type","code"}}, {"error":"…"} (Ollama's native
// form), vLLM's {"object":"error","message":…}, FastAPI's {"detail":…},
// or a short plain-text body. It returns "" for anything else (an HTML
// proxy page, say).
func errorBodyMessage(contentType string, body []byte) (msg, typ, code string) {
	var v struct {
		Error   json.RawMessage `json:"error"`
		Message json.RawMessage `json:"message"`
		Detail  json.RawMessage `json:"detail"`
	}
	if json.Unmarshal(body, &v) == nil {
		if e, err := parseError(v.Error); err == nil && e != nil {
			return e.Message, e.Type, e.code()
		}
		for _, raw := range []json.RawMessage{v.Message, v.Detail} {
			if s, err := decodeText(raw); err == nil && s != "" {
				return s, "", ""
			}
		}
		if len(v.Detail) > 0 && string(v.Detail) != "null" {
			return string(v.Detail), "", ""
		}
		return "", "", ""
	}
	mt, _, _ := mime.ParseMediaType(contentType)
	if mt == "text/plain" {
		return strings.TrimSpace(string(body)), "", ""
	}
	return "", "", ""
}

// streamError maps an error object received inside a 200 stream.
func streamError(e *errorObject) error {
	se := &StreamError{Message: e.Message, Type: e.Type, Code: e.code()}
	return &llm.Error{Code: llm.CodeUpstreamError, Message: upstream.ClipMessage("the model server failed mid-stream: " + e.Message), Err: se}
}

// redactURL renders u without credentials or query.
func redactURL(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery = ""
	c.Fragment = ""
	return c.String()
}
