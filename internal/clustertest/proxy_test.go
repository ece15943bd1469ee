package clustertest

import (
	"bufio"
	"errors"
	"net"
	"os"
	"testing"
	"time"
)

// echo starts a loopback server that answers each line with itself.
func echo(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if _, err := c.Write([]byte(line)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return l.Addr().String()
}

// roundTrip sends a line on c and reads the answer, within d.
func roundTrip(c net.Conn, r *bufio.Reader, d time.Duration) error {
	c.SetDeadline(time.Now().Add(d))
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return err
	}
	got, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if got != "ping\n" {
		return errors.New("got " + got)
	}
	return nil
}

type conn struct {
	net.Conn
	r *bufio.Reader
}

func dial(t *testing.T, addr string) conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return conn{c, bufio.NewReader(c)}
}

func (c conn) ok(d time.Duration) error { return roundTrip(c.Conn, c.r, d) }

// TestProxyModes: a proxy passes bytes; Cut breaks the connections it
// holds and every new one; Blackhole keeps connections and drops their
// bytes, so the dialer times out; healing lets new connections through and
// closes those that lost bytes.
func TestProxyModes(t *testing.T) {
	p, err := NewProxy(echo(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	const long = 10 * time.Second

	a := dial(t, p.Addr())
	if err := a.ok(long); err != nil {
		t.Fatalf("pass: %v", err)
	}

	p.Set(Cut)
	// Closed at once, with nothing sent on it.
	a.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := a.r.ReadByte(); err == nil || isTimeout(err) {
		t.Errorf("an idle connection after Cut: got %v, want it closed", err)
	}
	if err := a.ok(long); err == nil || isTimeout(err) {
		t.Errorf("an open connection after Cut: got %v, want it closed", err)
	}
	b := dial(t, p.Addr())
	if err := b.ok(long); err == nil || isTimeout(err) {
		t.Errorf("a new connection after Cut: got %v, want it closed", err)
	}

	p.Set(Pass)
	c := dial(t, p.Addr())
	if err := c.ok(long); err != nil {
		t.Fatalf("after healing a cut: %v", err)
	}

	p.Set(Blackhole)
	if err := c.ok(200 * time.Millisecond); !isTimeout(err) {
		t.Errorf("an open connection in a blackhole: got %v, want a timeout", err)
	}
	d := dial(t, p.Addr())
	if err := d.ok(200 * time.Millisecond); !isTimeout(err) {
		t.Errorf("a new connection in a blackhole: got %v, want a timeout", err)
	}

	p.Set(Pass)
	if err := c.ok(long); err == nil || isTimeout(err) {
		t.Errorf("a connection that lost bytes, after healing: got %v, want it closed", err)
	}
	e := dial(t, p.Addr())
	if err := e.ok(long); err != nil {
		t.Errorf("a new connection after healing a blackhole: %v", err)
	}
}

func isTimeout(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

// TestNetworkIsolate: isolating a node cuts both directions of each of
// its edges and leaves the others alone.
func TestNetworkIsolate(t *testing.T) {
	addrs := map[string]string{"n1": echo(t), "n2": echo(t), "n3": echo(t)}
	n, err := NewNetwork(addrs)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	const long = 10 * time.Second
	for from := range addrs {
		for to, addr := range n.DialAddrs(from) {
			if from == to {
				t.Fatalf("%s has an edge to itself", from)
			}
			if got := n.Edge(from, to).Target(); got != addrs[to] {
				t.Errorf("edge %s→%s goes to %s, want %s", from, to, got, addrs[to])
			}
			if err := dial(t, addr).ok(long); err != nil {
				t.Errorf("%s→%s: %v", from, to, err)
			}
		}
	}
	n.Isolate("n1", Cut)
	for _, e := range [][2]string{{"n1", "n2"}, {"n2", "n1"}, {"n1", "n3"}, {"n3", "n1"}} {
		if err := dial(t, n.DialAddrs(e[0])[e[1]]).ok(long); err == nil {
			t.Errorf("%s→%s passes after isolating n1", e[0], e[1])
		}
	}
	for _, e := range [][2]string{{"n2", "n3"}, {"n3", "n2"}} {
		if err := dial(t, n.DialAddrs(e[0])[e[1]]).ok(long); err != nil {
			t.Errorf("%s→%s after isolating n1: %v", e[0], e[1], err)
		}
	}
	n.HealAll()
	if err := dial(t, n.DialAddrs("n2")["n1"]).ok(long); err != nil {
		t.Errorf("n2→n1 after healing: %v", err)
	}
	if err := n.Set("n1", "n1", Cut); err == nil {
		t.Error("an edge from a node to itself was set")
	}
}
