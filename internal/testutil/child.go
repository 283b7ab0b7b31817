package testutil

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Main is a TestMain body: when the environment variable env is set, the
// binary is a child and exits with child(its value); otherwise it runs
// the tests.
func Main(m *testing.M, env string, child func(spec string) int) {
	if spec := os.Getenv(env); spec != "" {
		os.Exit(child(spec))
	}
	os.Exit(m.Run())
}

// AwaitRelease blocks a child until it reads a "release" line on stdin
// (or stdin ends).
func AwaitRelease() {
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() && sc.Text() != "release" {
	}
}

// Command returns the test binary re-executed to run no tests, with env
// ("NAME=value") added to its environment and its stderr passed through.
func Command(env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	return cmd
}

// Child is a running re-executed test binary whose stdout lines are read
// as they come and whose stdin takes commands.
type Child struct {
	Cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
}

// StartChild starts Command(env...) and kills and reaps it when the test
// ends.
func StartChild(t testing.TB, env ...string) *Child {
	t.Helper()
	cmd := Command(env...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &Child{Cmd: cmd, stdin: stdin, lines: make(chan string, 16)}
	go func() { // owner: the child's lifetime; ends when its stdout closes
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
		close(c.lines)
	}()
	t.Cleanup(c.Kill)
	return c
}

// Next returns the child's next line, failing the test if it exits or
// stays silent for timeout.
func (c *Child) Next(t testing.TB, timeout time.Duration) string {
	t.Helper()
	select {
	case l, ok := <-c.lines:
		if !ok {
			t.Fatal("child exited before printing a line")
		}
		return l
	case <-time.After(timeout):
		t.Fatalf("child printed nothing within %v", timeout)
	}
	return ""
}

// Expect skips lines until one starts with prefix and returns it, failing
// the test if the child exits first or timeout passes.
func (c *Child) Expect(t testing.TB, prefix string, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-c.lines:
			if !ok {
				t.Fatalf("child exited before printing %q", prefix)
			}
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-deadline:
			t.Fatalf("child did not print %q within %v", prefix, timeout)
		}
	}
}

// NotYet fails the test if the child prints anything within d.
func (c *Child) NotYet(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case l := <-c.lines:
		t.Fatalf("child printed %q while it should be blocked", l)
	case <-time.After(d):
	}
}

// Send writes one line to the child's stdin.
func (c *Child) Send(t testing.TB, line string) {
	t.Helper()
	if _, err := io.WriteString(c.stdin, line+"\n"); err != nil {
		t.Fatal(err)
	}
}

// Wait fails the test unless the child exits successfully.
func (c *Child) Wait(t testing.TB) {
	t.Helper()
	if err := c.Cmd.Wait(); err != nil {
		t.Fatalf("child: %v", err)
	}
}

// Kill ends the child at once and reaps it (errors ignored: it may have
// exited and been reaped already).
func (c *Child) Kill() {
	_ = c.Cmd.Process.Kill()
	_ = c.Cmd.Wait()
}
