//go:build !unix

package testkit

import "time"

// CPUTime is not measured here: it is 0, and benchmarks leave out their
// CPU figures.
func CPUTime() time.Duration { return 0 }
