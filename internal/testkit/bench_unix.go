//go:build unix

package testkit

import (
	"syscall"
	"time"
)

// CPUTime is the process's user and system CPU time so far, for
// benchmarks that report CPU per unit of work.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
