package loadgen

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ProcStats is what /proc says about a server process at one moment.
type ProcStats struct {
	At time.Time `json:"at"`
	// RSS is VmRSS: resident memory, bytes.
	RSS int64 `json:"rss_bytes"`
	// RSSAnon is RssAnon: the resident heap and stacks, without mapped
	// files (the binary), bytes.
	RSSAnon int64 `json:"rss_anon_bytes"`
	// Threads is the number of OS threads.
	Threads int `json:"threads"`
	// FDs is the number of open file descriptors.
	FDs int `json:"fds"`
	// CPU is user plus system CPU time used since the process started.
	CPU time.Duration `json:"cpu_ns"`
}

// clockTick is USER_HZ, the unit of /proc/<pid>/stat times; 100 on every
// Linux architecture Go supports.
const clockTick = 100

// ReadProc reads pid's memory, thread, descriptor and CPU figures.
func ReadProc(pid int) (ProcStats, error) {
	st := ProcStats{At: time.Now()}
	dir := "/proc/" + strconv.Itoa(pid)
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		return st, fmt.Errorf("read server status: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmRSS":
			st.RSS = n << 10
		case "RssAnon":
			st.RSSAnon = n << 10
		case "Threads":
			st.Threads = int(n)
		}
	}
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		return st, fmt.Errorf("read server stat: %w", err)
	}
	// The command name may hold spaces and parentheses: fields are counted
	// from the last ')'. utime and stime are fields 14 and 15.
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 {
		f := strings.Fields(string(stat[i+1:]))
		if len(f) > 12 {
			ut, _ := strconv.ParseInt(f[11], 10, 64)
			stt, _ := strconv.ParseInt(f[12], 10, 64)
			st.CPU = time.Duration(ut+stt) * time.Second / clockTick
		}
	}
	if ents, err := os.ReadDir(dir + "/fd"); err == nil {
		st.FDs = len(ents)
	}
	return st, nil
}

// FindListener returns the pid of the process listening on TCP port (on
// any address), found through /proc/net/tcp{,6} and /proc/*/fd.
func FindListener(port int) (int, error) {
	inodes := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 10 || fs[3] != "0A" { // 0A: LISTEN
				continue
			}
			_, hexPort, _ := strings.Cut(fs[1], ":")
			p, err := strconv.ParseInt(hexPort, 16, 32)
			if err == nil && int(p) == port {
				inodes["socket:["+fs[9]+"]"] = true
			}
		}
	}
	if len(inodes) == 0 {
		return 0, fmt.Errorf("no process listens on port %d", port)
	}
	procs, _ := filepath.Glob("/proc/[0-9]*")
	for _, p := range procs {
		pid, err := strconv.Atoi(filepath.Base(p))
		if err != nil || pid == os.Getpid() {
			continue
		}
		fds, err := os.ReadDir(p + "/fd")
		if err != nil {
			continue
		}
		for _, fd := range fds {
			if link, err := os.Readlink(p + "/fd/" + fd.Name()); err == nil && inodes[link] {
				return pid, nil
			}
		}
	}
	return 0, errors.New("the listener on port " + strconv.Itoa(port) + " belongs to no process this user can inspect")
}
