package freeport

import (
	"net"
	"strconv"
	"testing"
)

// TestAddr: the address is free on loopback, below the ephemeral range.
func TestAddr(t *testing.T) {
	for range 20 {
		addr, err := Addr()
		if err != nil {
			t.Fatal(err)
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil || host != "127.0.0.1" {
			t.Fatalf("got %q, want 127.0.0.1:PORT", addr)
		}
		p, _ := strconv.Atoi(port)
		if p < lowest || p >= ephemeralStart() {
			t.Errorf("got port %d, want one in [%d, %d)", p, lowest, ephemeralStart())
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatalf("listen on %s: %v", addr, err)
		}
		ln.Close()
	}
}
