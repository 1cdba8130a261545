package actors

import (
	"errors"
	"fmt"
)

// Error codes that cross the wire (PROTOCOL.md section 3).
const (
	CodeBadRequest          = "bad_request"
	CodeUnauthorized        = "unauthorized"
	CodeForbidden           = "forbidden"
	CodeNotFound            = "not_found"
	CodeBusy                = "busy"
	CodeConflict            = "conflict"
	CodeTooLarge            = "too_large"
	CodeRateLimited         = "rate_limited"
	CodeUpstreamUnavailable = "upstream_unavailable"
	CodeUpstreamError       = "upstream_error"
	CodeInternal            = "internal"
)

// Error is a coded error a command can end in. It is what crosses the wire
// as an error frame or an HTTP error body; Message is safe to show.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Errorf builds an *Error with a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the wire code of err: its own when it is an *Error,
// CodeInternal otherwise.
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// AsError converts any error to an *Error, hiding the details of errors
// that are not already coded.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: CodeInternal, Message: "internal error"}
}

var (
	errForbidden = &Error{Code: CodeForbidden, Message: "this session belongs to another user"}
	errNotFound  = &Error{Code: CodeNotFound, Message: "no such session"}
	errBusy      = &Error{Code: CodeBusy, Message: "a reply is being generated; stop it or wait"}
	errShutdown  = &Error{Code: CodeInternal, Message: "server is shutting down"}
)
