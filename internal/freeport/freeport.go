// Package freeport picks loopback addresses for processes that must be
// told their address before they start and keep it across restarts: the
// nodes of a cluster on one machine, each known to the others by address.
//
// A port taken with net.Listen("tcp", "127.0.0.1:0") comes from the
// kernel's ephemeral range, from which every outgoing connection on the
// machine also takes its local port: while a node is down, a client's or
// another node's keep-alive connection may take the node's port as its own
// and hold it, and the node cannot listen again until it closes. Addr
// picks below the ephemeral range instead.
package freeport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
)

// lowest is the lowest port Addr picks.
const lowest = 20000

// Addr returns a loopback address, 127.0.0.1:PORT, that nothing listens on
// now, with the port below the kernel's ephemeral range (Linux's
// ip_local_port_range; 32768 elsewhere), or from it if none is free there.
func Addr() (string, error) {
	top := ephemeralStart()
	for range 100 {
		if top <= lowest {
			break
		}
		addr := "127.0.0.1:" + strconv.Itoa(lowest+rand.IntN(top-lowest))
		if ln, err := net.Listen("tcp", addr); err == nil {
			ln.Close()
			return addr, nil
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("no free loopback port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// ephemeralStart returns the first port of the ephemeral range.
func ephemeralStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) < 1 {
		return 32768
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n < 1024 {
		return 32768
	}
	return n
}
