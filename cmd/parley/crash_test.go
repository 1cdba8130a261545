package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parleyhq/parley/events"
	"github.com/parleyhq/parley/internal/testkit"
)

// childEnv, when set in the environment of this test binary, makes it run
// `parley` with its arguments instead of the tests: the crash test needs a
// real process it can kill -9.
const childEnv = "PARLEY_TEST_RUN_AS_PARLEY"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// childLineRE takes the HTTP address from serve's start line.
var childLineRE = regexp.MustCompile(`^parley listening on http://(\S+) `)

// child is `parley serve` in a process of its own.
type child struct {
	cmd  *exec.Cmd
	base string        // http://127.0.0.1:port
	exit chan struct{} // closed when the process has exited
}

// startChild runs this test binary as `parley serve` with e and waits for
// its start line.
func startChild(t *testing.T, e env) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "serve")
	cmd.Env = []string{childEnv + "=1", "HOME=" + os.Getenv("HOME"), "PATH=" + os.Getenv("PATH")}
	for k, v := range e {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, exit: make(chan struct{})}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		for sc.Scan() {
		}
		_ = cmd.Wait()
		close(c.exit)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-c.exit
	})
	select {
	case line, ok := <-lines:
		m := childLineRE.FindStringSubmatch(line)
		if !ok || m == nil {
			t.Fatalf("child start line %q; stderr:\n%s", line, stderr)
		}
		c.base = "http://" + m[1]
	case <-time.After(waitTimeout):
		t.Fatalf("child printed no start line within %v; stderr:\n%s", waitTimeout, stderr)
	}
	return c
}

// kill9 kills the child with SIGKILL: no shutdown code runs.
func (c *child) kill9(t *testing.T) {
	t.Helper()
	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.exit:
	case <-time.After(waitTimeout):
		t.Fatal("child still running after SIGKILL")
	}
}

// TestKill9MidGeneration kills the server with SIGKILL while a reply
// streams, after some of it was persisted in chunks, and starts it again
// on the same data: the log gets generation.interrupted whose text is
// what the chunks persisted, a prefix of what the client saw; every
// acknowledged event is still there; and the session takes a new send.
func TestKill9MidGeneration(t *testing.T) {
	t.Parallel()
	up := newUpstream(t)
	// Tokens every 5 ms for far longer than the test waits: the kill
	// always comes mid-reply.
	tokens := make([]string, 20000)
	for i := range tokens {
		tokens[i] = fmt.Sprintf("t%d ", i)
	}
	up.Push(testkit.TokenReply(5*time.Millisecond, tokens...))
	up.Push(testkit.TextReply("after the crash", 3))
	e := baseEnv(t, up.URL()).with("PARLEY_NATS_LISTEN", "off", "PARLEY_CHUNK_INTERVAL", "50ms")

	s := startChild(t, e)
	id := chat(t, s.base, "go on forever")
	c := testkit.DialWS(t, "ws"+strings.TrimPrefix(s.base, "http")+"/v1/ws", nil)
	c.Ack(c.Command(map[string]any{"type": "attach", "session": id}))
	// Read until a few chunk intervals of text went by, then kill.
	var seen strings.Builder
	deadline := time.Now().Add(300 * time.Millisecond)
	for time.Now().Before(deadline) || seen.Len() == 0 {
		f := c.Next()
		if f.Type == "delta" && f.Gen == 3 {
			if f.Offset != seen.Len() {
				t.Fatalf("delta at offset %d after %d bytes", f.Offset, seen.Len())
			}
			seen.WriteString(f.Text)
		}
	}
	s.kill9(t)
	c.Close()

	// Before the restart, the log ends open: chunks, no terminal event.
	evs, _ := replayJSON(t, e, id)
	if k := kinds(evs); k[len(k)-1] != "generation.chunk" {
		t.Fatalf("log after kill -9 ends %v; want chunks and no terminal event", k)
	}

	s2 := startChild(t, e)
	// The restart recovered it already: the list says it is not generating
	// before anyone opened the session.
	status, body := do(t, "GET", s2.base+"/v1/sessions", nil)
	if status != 200 || !strings.Contains(string(body), `"generating":false`) || strings.Contains(string(body), `"generating":true`) {
		t.Errorf("session list right after the restart: %d %s", status, body)
	}
	d := waitReply(t, s2.base, id, "interrupted")
	last := d.Messages[len(d.Messages)-1]
	if last.Content == "" || !strings.HasPrefix(seen.String(), last.Content) {
		t.Fatalf("after restart the interrupted reply has %d bytes; want a non-empty prefix of the %d bytes the client saw",
			len(last.Content), seen.Len())
	}
	t.Logf("client saw %d bytes before the kill; %d were persisted", seen.Len(), len(last.Content))

	// The session goes on.
	status, body = do(t, "POST", s2.base+"/v1/sessions/"+id+"/messages", map[string]any{"content": "again"})
	if status != 202 {
		t.Fatalf("send after restart: %d %s", status, body)
	}
	d = waitReply(t, s2.base, id, "completed")
	if got := d.Messages[len(d.Messages)-1].Content; got != "after the crash" {
		t.Errorf("reply after restart %q", got)
	}
	s2.kill9(t)

	evs, _ = replayJSON(t, e, id)
	var terminal, started int
	var interrupted events.GenerationInterrupted
	for _, ev := range evs {
		switch {
		case ev.Kind == events.KindGenerationStarted:
			started++
		case ev.Kind == events.KindGenerationInterrupted:
			if err := ev.Decode(&interrupted); err != nil {
				t.Fatal(err)
			}
			terminal++
		case ev.Kind.Terminal():
			terminal++
		}
	}
	if started != 2 || terminal != 2 || interrupted.Gen != 3 || interrupted.Text != last.Content {
		t.Errorf("log: %d generations, %d ended; interrupted %+v", started, terminal, interrupted)
	}
}
