// Package clustertest has what tests of a cluster of hub nodes need beside
// the nodes themselves: a fault-injecting TCP proxy to put on each directed
// link between two nodes, and a linearizability model of the flag state
// the nodes serve, for github.com/anishathalye/porcupine.
//
// # Links
//
// A [Network] puts one [Proxy] on each directed edge between nodes (n1→n2
// and n2→n1 are two edges): node n1 dials [Network.DialAddrs]("n1")["n2"]
// instead of n2's raft address. A test can then cut, blackhole and heal
// any edge, or isolate a node from all the others:
//
//	net, _ := clustertest.NewNetwork(map[string]string{"n1": r1, "n2": r2, "n3": r3})
//	defer net.Close()
//	// start n1 with --raft-dial n2=<DialAddrs("n1")["n2"]>,n3=…
//	net.Isolate("n1") // both directions of every edge of n1 cut
//	net.HealAll()
//
// Everything is real sockets on loopback.
package clustertest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// A Mode is what a [Proxy] does with the bytes of its connections.
type Mode int32

const (
	// Pass forwards bytes both ways.
	Pass Mode = iota
	// Cut closes every connection, and every new one as soon as it is
	// accepted: the dialer sees its connection reset.
	Cut
	// Blackhole keeps connections open and drops every byte, as a link
	// that lost all its packets does: the dialer sees timeouts. Healing
	// closes the connections that lost bytes.
	Blackhole
)

func (m Mode) String() string {
	switch m {
	case Pass:
		return "pass"
	case Cut:
		return "cut"
	case Blackhole:
		return "blackhole"
	}
	return fmt.Sprintf("Mode(%d)", int32(m))
}

// A Proxy listens on a loopback port and forwards each connection to a
// target address, as its [Mode] says.
type Proxy struct {
	target string
	l      net.Listener
	mode   atomic.Int32

	mu     sync.Mutex
	conns  map[*link]struct{}
	closed bool
	wg     sync.WaitGroup
}

// A link is one proxied connection: the accepted one and the one dialed.
type link struct {
	in, out net.Conn
	// lost is set when a byte was dropped; the link is closed on healing.
	lost atomic.Bool
	once sync.Once
}

func (l *link) close() {
	l.once.Do(func() {
		l.in.Close()
		if l.out != nil {
			l.out.Close()
		}
	})
}

// NewProxy starts a proxy to target on a free loopback port.
func NewProxy(target string) (*Proxy, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{target: target, l: l, conns: map[*link]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr is the address to dial in place of the target.
func (p *Proxy) Addr() string { return p.l.Addr().String() }

// Target is the address the proxy forwards to.
func (p *Proxy) Target() string { return p.target }

// Mode returns what the proxy does now.
func (p *Proxy) Mode() Mode { return Mode(p.mode.Load()) }

// Set changes what the proxy does: Cut closes every connection, Pass
// closes those that lost bytes in a blackhole.
func (p *Proxy) Set(m Mode) {
	p.mode.Store(int32(m))
	p.mu.Lock()
	defer p.mu.Unlock()
	for l := range p.conns {
		if m == Cut || (m == Pass && l.lost.Load()) {
			l.close()
		}
	}
}

// Close stops the proxy and closes every connection.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	for l := range p.conns {
		l.close()
	}
	p.mu.Unlock()
	err := p.l.Close()
	p.wg.Wait()
	return err
}

// Conns returns how many connections the proxy holds open.
func (p *Proxy) Conns() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		if p.Mode() == Cut {
			c.Close()
			continue
		}
		l := &link{in: c}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			return
		}
		p.conns[l] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go p.serve(l)
	}
}

// serve dials the target for l and copies both ways until either side
// closes.
func (p *Proxy) serve(l *link) {
	defer p.wg.Done()
	defer func() {
		l.close()
		p.mu.Lock()
		delete(p.conns, l)
		p.mu.Unlock()
	}()
	if p.Mode() == Blackhole {
		// No connection to the target: the dialer's bytes go nowhere.
		l.lost.Store(true)
		_, _ = io.Copy(io.Discard, l.in)
		return
	}
	out, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	p.mu.Lock()
	l.out = out
	closed := p.closed
	p.mu.Unlock()
	if closed || p.Mode() == Cut {
		out.Close()
		return
	}
	done := make(chan struct{}, 2)
	go func() { p.copy(l, out, l.in); done <- struct{}{} }()
	go func() { p.copy(l, l.in, out); done <- struct{}{} }()
	<-done
	l.close()
	<-done
}

// copy copies from src to dst as the proxy's mode says, until src ends or
// the link is closed.
func (p *Proxy) copy(l *link, dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			switch p.Mode() {
			case Cut:
				return
			case Blackhole:
				l.lost.Store(true)
			default:
				if l.lost.Load() {
					// Bytes were dropped: the stream is broken.
					return
				}
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			return
		}
	}
}

// A Network is a set of nodes with a [Proxy] on every directed edge
// between two of them.
type Network struct {
	nodes []string
	// edges maps "from>to" to its proxy.
	edges map[string]*Proxy
}

// NewNetwork starts a proxy for each directed edge between the nodes,
// given as node id → the address the node listens on.
func NewNetwork(addrs map[string]string) (*Network, error) {
	n := &Network{edges: map[string]*Proxy{}}
	for id := range addrs {
		n.nodes = append(n.nodes, id)
	}
	for _, from := range n.nodes {
		for _, to := range n.nodes {
			if from == to {
				continue
			}
			p, err := NewProxy(addrs[to])
			if err != nil {
				n.Close()
				return nil, err
			}
			n.edges[from+">"+to] = p
		}
	}
	return n, nil
}

// Edge returns the proxy on the edge from → to, or nil.
func (n *Network) Edge(from, to string) *Proxy { return n.edges[from+">"+to] }

// DialAddrs returns, for node from, the address it dials for each other
// node.
func (n *Network) DialAddrs(from string) map[string]string {
	m := map[string]string{}
	for _, to := range n.nodes {
		if p := n.Edge(from, to); p != nil {
			m[to] = p.Addr()
		}
	}
	return m
}

// Set sets the mode of the edge from → to.
func (n *Network) Set(from, to string, m Mode) error {
	p := n.Edge(from, to)
	if p == nil {
		return fmt.Errorf("no edge %s → %s", from, to)
	}
	p.Set(m)
	return nil
}

// Isolate sets every edge to and from node to m (Cut or Blackhole).
func (n *Network) Isolate(node string, m Mode) {
	for _, other := range n.nodes {
		if other == node {
			continue
		}
		n.Edge(node, other).Set(m)
		n.Edge(other, node).Set(m)
	}
}

// HealAll sets every edge to Pass.
func (n *Network) HealAll() {
	for _, p := range n.edges {
		p.Set(Pass)
	}
}

// Close closes every proxy.
func (n *Network) Close() error {
	var errs []error
	for _, p := range n.edges {
		errs = append(errs, p.Close())
	}
	return errors.Join(errs...)
}
