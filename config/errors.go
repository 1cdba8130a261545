package config

import (
	"errors"
	"fmt"
)

// ErrInvalid is wrapped by every *ValidationError, so callers can test
// errors.Is(err, config.ErrInvalid) without unpacking a joined error.
var ErrInvalid = errors.New("config: invalid")

// ValidationError reports one bad setting, named by its environment
// variable (flags are named after it).
type ValidationError struct {
	// Var is the environment variable, e.g. "PARLEY_LISTEN" or "PORT".
	Var string
	// Value is the offending value as given, or as the field held it for
	// Validate. It is "" for secrets, which are never echoed.
	Value string
	// Msg says what the variable accepts and how to fix it.
	Msg string
}

func (e *ValidationError) Error() string {
	if e.Value == "" {
		return e.Var + ": " + e.Msg
	}
	return fmt.Sprintf("%s=%q: %s", e.Var, e.Value, e.Msg)
}

// Unwrap returns ErrInvalid.
func (e *ValidationError) Unwrap() error { return ErrInvalid }
