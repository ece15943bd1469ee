// Package procnode runs sparr serve processes on loopback for the demo's
// cluster, the load tool and the cluster tests: it starts a process, waits
// for its "listening on " line, and kills (SIGKILL), stops (SIGTERM) and
// starts it again on the same data directory and addresses.
//
// # Example
//
//	n := &procnode.Node{ID: "n1", Data: dir, URL: "http://" + addr,
//		Args: []string{"serve", "--data", dir, "--addr", addr},
//		Env:  procnode.Environ("SPARR_LOG_LEVEL=warn")}
//	if err := n.Start(ctx, bin); err != nil {
//		return err
//	}
//	defer n.Stop(10 * time.Second)
//
// It imports no package of this module.
package procnode

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrNotRunning is returned by [Node.Kill], [Node.Stop] and [Node.Signal]
// when the node has no running process.
var ErrNotRunning = errors.New("procnode: node not running")

// A Node is one sparr serve process: what it runs (Args, Env) and where
// (Data, URL), started with [Node.Start] and ended with [Node.Kill] or
// [Node.Stop], as often as a caller likes.
type Node struct {
	// ID names the node in errors (a cluster's node id).
	ID string
	// Data is the node's data directory; URL its HTTP address.
	Data, URL string
	// Args are the arguments after the binary ("serve", ...).
	Args []string
	// Env is the process's environment; nil means this process's.
	Env []string
	// Patience is how long Start waits for the node to listen, retrying
	// while its port is still held; 30 s if zero.
	Patience time.Duration

	cmd            *exec.Cmd
	exited         chan struct{}
	err            error // cmd.Wait's, once exited is closed
	stdout, stderr *buffer
	starts         int
}

// Start starts the node's process from bin and waits (up to n.Patience)
// until it says "listening on ". A port that a killed process held may take a moment to
// be free: while the process exits with "address already in use", Start
// tries again, up to n.Patience.
func (n *Node) Start(ctx context.Context, bin string) error {
	deadline := time.Now().Add(n.patience())
	for {
		ok, err := n.launch(ctx, bin)
		if ok || err != nil {
			return err
		}
		if !strings.Contains(n.stderr.String(), "address already in use") || time.Now().After(deadline) {
			return fmt.Errorf("node %s (start %d) exited before listening: %v: %s", n.ID, n.starts, n.err, strings.TrimSpace(n.stderr.String()))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// launch starts the process once and reports whether it listens within
// n.Patience; false with no error means it exited first.
func (n *Node) launch(ctx context.Context, bin string) (bool, error) {
	cmd := exec.Command(bin, n.Args...)
	cmd.Env = n.Env
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return false, err
	}
	n.starts++
	n.stdout, n.stderr = new(buffer), new(buffer)
	cmd.Stderr = n.stderr
	if err := cmd.Start(); err != nil {
		return false, fmt.Errorf("start node %s: %w", n.ID, err)
	}
	listening := make(chan bool, 1)
	go func(out *buffer) {
		s := bufio.NewScanner(stdout)
		said := false
		for s.Scan() {
			out.Write(append(s.Bytes(), '\n'))
			if !said && strings.HasPrefix(s.Text(), "listening on ") {
				said = true
				listening <- true
			}
		}
		if !said {
			listening <- false
		}
		io.Copy(io.Discard, stdout)
	}(n.stdout)
	exited := make(chan struct{})
	go func() { n.err = cmd.Wait(); close(exited) }()
	n.cmd, n.exited = cmd, exited
	select {
	case ok := <-listening:
		if ok {
			return true, nil
		}
	case <-ctx.Done():
		n.Kill()
		return false, ctx.Err()
	case <-time.After(n.patience()):
		n.Kill()
		return false, fmt.Errorf("node %s (start %d) did not listen within %s: %s", n.ID, n.starts, n.patience(), strings.TrimSpace(n.stderr.String()))
	}
	<-exited
	n.cmd = nil
	return false, nil
}

func (n *Node) patience() time.Duration {
	if n.Patience == 0 {
		return 30 * time.Second
	}
	return n.Patience
}

// Running reports whether the node has a process started and not yet
// ended by Kill or Stop.
func (n *Node) Running() bool { return n.cmd != nil }

// Pid returns the running process's id, or 0.
func (n *Node) Pid() int {
	if n.cmd == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// Starts returns how many processes Start has launched for the node.
func (n *Node) Starts() int { return n.starts }

// Exited returns a channel closed when the latest process exits (nil
// before the first Start).
func (n *Node) Exited() <-chan struct{} { return n.exited }

// Stderr returns what the latest process wrote to its standard error.
func (n *Node) Stderr() string {
	if n.stderr == nil {
		return ""
	}
	return n.stderr.String()
}

// Stdout returns what the latest process wrote to its standard output.
func (n *Node) Stdout() string {
	if n.stdout == nil {
		return ""
	}
	return n.stdout.String()
}

// Signal sends sig to the running process (SIGSTOP, SIGCONT).
func (n *Node) Signal(sig os.Signal) error {
	if n.cmd == nil {
		return ErrNotRunning
	}
	return n.cmd.Process.Signal(sig)
}

// Kill ends the node with SIGKILL, as a power cut would, waits for it, and
// returns what waiting for the process returned (an *exec.ExitError).
func (n *Node) Kill() error {
	if n.cmd == nil {
		return ErrNotRunning
	}
	n.cmd.Process.Kill()
	<-n.exited
	n.cmd = nil
	return n.err
}

// Stop ends the node with SIGTERM and waits for it; if it has not exited
// after grace, Stop kills it and says so. It returns nil for a clean exit
// (status 0).
func (n *Node) Stop(grace time.Duration) error {
	if n.cmd == nil {
		return nil
	}
	if err := n.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case <-n.exited:
		n.cmd = nil
		if n.err != nil {
			return fmt.Errorf("node %s exited with %v after SIGTERM, want status 0; stderr:\n%s", n.ID, n.err, n.stderr)
		}
		return nil
	case <-time.After(grace):
		n.Kill()
		return fmt.Errorf("node %s did not stop within %s of SIGTERM; stderr:\n%s", n.ID, grace, n.stderr)
	}
}

// Environ returns this process's environment without its SPARR_ variables,
// which would configure the node, followed by extra.
func Environ(extra ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SPARR_") {
			out = append(out, kv)
		}
	}
	return append(out, extra...)
}

// CopyKeys copies the files of the directory from (the hub's keys) to the
// directory to, made with mode 0700 if missing, each file with mode 0600.
func CopyKeys(from, to string) error {
	entries, err := os.ReadDir(from)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(to, 0o700); err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(from, e.Name()))
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// A buffer is a bytes.Buffer that a process writes while another
// goroutine reads it.
type buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *buffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *buffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
