// Package web holds Parley's browser UI: one self-contained HTML page with
// its script inline, embedded in the binary. It needs no build step.
package web

import _ "embed"

// Index is the chat page served at "/".
//
//go:embed index.html
var Index []byte
