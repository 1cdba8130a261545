//go:build !unix

package sim_test

import "time"

// cpuTime is not measured here; benchmarks then leave out CPU figures.
func cpuTime() time.Duration { return 0 }
