package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/parleyhq/parley/bench/loadgen"
)

// TestLoadgenCommandLine: bad loadgen command lines and non-loopback
// targets fail before any connection is made, with the exit code main
// would use.
func TestLoadgenCommandLine(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		args   []string
		exit   int
		errIs  error
		errHas string
	}{
		{name: "target off loopback", args: []string{"-url", "ws://10.1.2.3:8080/v1/ws"}, exit: 1, errIs: loadgen.ErrNotLoopback},
		{name: "target by name", args: []string{"-url", "ws://example.com/v1/ws"}, exit: 1, errIs: loadgen.ErrNotLoopback},
		{name: "NATS off loopback", args: []string{"-nats-url", "nats://192.168.0.1:4222"}, exit: 1, errIs: loadgen.ErrNotLoopback},
		{name: "direct off loopback", args: []string{"-direct", "http://10.0.0.1:11434", "-model", "x"}, exit: 1, errIs: loadgen.ErrNotLoopback},
		{name: "source address off loopback", args: []string{"-source-ips", "10.0.0.2"}, exit: 1, errHas: "127.0.0.0/8"},
		{name: "steps not increasing", args: []string{"-conns", "100,50"}, exit: 1, errHas: "increase"},
		{name: "conns not a number", args: []string{"-conns", "many"}, exit: 2, errHas: "-conns"},
		{name: "more chats than sessions", args: []string{"-conns", "100", "-sessions", "5", "-chats", "6"}, exit: 1, errHas: "chats"},
		{name: "unknown flag", args: []string{"-nope"}, exit: 2, errHas: "nope"},
		{name: "stray argument", args: []string{"extra"}, exit: 2, errHas: "no arguments"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), append([]string{"loadgen", "-server-pid", "-1"}, tc.args...),
				func(string) string { return "" }, &stdout, &stderr)
			if err == nil {
				t.Fatalf("no error; stdout %q", stdout.String())
			}
			if got := exitCode(err); got != tc.exit {
				t.Errorf("exit code %d, want %d (%v)", got, tc.exit, err)
			}
			if tc.errIs != nil && !errors.Is(err, tc.errIs) {
				t.Errorf("error %v, want %v", err, tc.errIs)
			}
			if tc.errHas != "" && !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("error %q does not mention %q", err, tc.errHas)
			}
		})
	}
}
