package ollama

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"

	"github.com/ollama/ollama/api"

	"github.com/parleyhq/parley/llm"
	"github.com/parleyhq/parley/llm/internal/upstream"
)

// Causes of an *llm.Error returned when one of the Provider's own timers
// cancelled a generation.
var (
	ErrFirstTokenTimeout = errors.New("ollama: no record within the first-token timeout")
	ErrIdleTimeout       = errors.New("ollama: no record within the idle timeout")
	ErrTotalTimeout      = errors.New("ollama: generation exceeded the total timeout")
)

// timeoutError builds the error for a generation cut by one of our timers.
func timeoutError(cause error, cfg *Config) error {
	return upstream.TimeoutError("Ollama", cause,
		upstream.Causes{FirstToken: ErrFirstTokenTimeout, Idle: ErrIdleTimeout, Total: ErrTotalTimeout},
		upstream.Timeouts{FirstToken: cfg.FirstTokenTimeout, Idle: cfg.IdleTimeout, Total: cfg.TotalTimeout})
}

// classify turns an error returned by the api client into an *llm.Error.
// The caller has already ruled out its own cancellation and our timers.
func (p *Provider) classify(err error) error {
	var authErr api.AuthorizationError
	if errors.As(err, &authErr) {
		return &llm.Error{Code: llm.CodeUpstreamError, Message: "Ollama refused the request: unauthorized", Err: err}
	}
	var statusErr api.StatusError
	if errors.As(err, &statusErr) {
		msg := statusErr.ErrorMessage
		if msg == "" {
			msg = statusErr.Status
		}
		return &llm.Error{Code: codeForStatus(statusErr.StatusCode), Message: upstream.ClipMessage(msg), Err: err,
			Retryable: retryableStatus(statusErr.StatusCode)}
	}
	// http.Client.Do failed: no response at all (dial, DNS, refused, reset
	// before the status line, TLS).
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		return &llm.Error{
			Code:      llm.CodeUpstreamUnavailable,
			Message:   fmt.Sprintf("cannot reach Ollama at %s", p.base.Redacted()),
			Err:       err,
			Retryable: true,
		}
	}
	// A record that is not a valid ChatResponse.
	var syntaxErr *json.SyntaxError
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &syntaxErr) || errors.As(err, &typeErr) {
		return &llm.Error{Code: llm.CodeUpstreamError, Message: "malformed record from Ollama", Err: err}
	}
	// What remains is an {"error":…} line on a 200 response (the client
	// returns errors.New(message)), a line that is not JSON (returned the
	// same way), or something this code does not know about.
	return &llm.Error{Code: llm.CodeUpstreamError, Message: upstream.ClipMessage(err.Error()), Err: err}
}

// codeForStatus maps an HTTP status from Ollama (or a proxy in front of it)
// to an error code: overloaded or not there is "unavailable", anything else
// is the server's answer to this request.
func codeForStatus(status int) string {
	switch status {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable,
		http.StatusBadGateway, http.StatusGatewayTimeout:
		return llm.CodeUpstreamUnavailable
	}
	return llm.CodeUpstreamError
}

// statusOnlyError is the error for an HTTP error status whose body had no
// line the client could report (the client returns nil for an empty body).
func statusOnlyError(status int) error {
	text := http.StatusText(status)
	if text == "" {
		text = "error"
	}
	err := api.StatusError{StatusCode: status, Status: fmt.Sprintf("%d %s", status, text)}
	return &llm.Error{Code: codeForStatus(status), Message: err.Status, Err: err, Retryable: retryableStatus(status)}
}

// retryableStatus reports whether a request refused with status may pass
// on a later try: the server was busy (429) or failed (5xx). Ollama sends
// no Retry-After, and api.StatusError does not carry headers.
func retryableStatus(status int) bool {
	return status == http.StatusTooManyRequests || status >= 500
}
