package main

import (
	"context"
	"net/url"
	"strings"
	"testing"
)

func FuzzParseHTTPPeers(f *testing.F) {
	for _, s := range []string{"n1=http://127.0.0.1:8081,n2=https://hub2.example:8443", "n1=http://h/", "n1=ftp://h", "n1=http://h/path", "=http://h", "n1=http://h,n1=http://g"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		peers, err := parseHTTPPeers(s)
		if err != nil {
			return
		}
		for id, raw := range peers {
			u, err := url.Parse(raw)
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.HasSuffix(raw, "/") {
				t.Fatalf("%q gave %s=%q", s, id, raw)
			}
		}
	})
}

func TestServeClusterFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--node-id", "n1"}, "--node-id needs --cluster"},
		{[]string{"--cluster", "--node-id", "n 1", "--raft-addr", "127.0.0.1:7001", "--cluster-servers", "n1=127.0.0.1:7001"}, "--node-id"},
		{[]string{"--cluster", "--node-id", "n1", "--raft-addr", "127.0.0.1:7001"}, "--cluster needs --cluster-servers"},
		{[]string{"--cluster", "--node-id", "n1", "--raft-addr", "127.0.0.1:7001", "--cluster-servers", "n2=127.0.0.1:7002"}, "does not list this node"},
		{[]string{"--cluster", "--node-id", "n1", "--raft-addr", "127.0.0.1:7001", "--cluster-servers", "n1=127.0.0.1:7009"}, "gives this node n1 the address"},
		{[]string{"--cluster", "--node-id", "n1", "--raft-addr", "127.0.0.1:7001", "--cluster-servers", "n1=127.0.0.1:7001", "--join", "http://h"}, "not both"},
		{[]string{"--cluster", "--node-id", "n1", "--raft-addr", "127.0.0.1:7001", "--cluster-servers", "n1=127.0.0.1:7001", "--http-peers", "n1=ftp://x"}, "--http-peers"},
		{[]string{"--cluster", "--node-id", "n1", "--raft-addr", "127.0.0.1:7001", "--cluster-servers", "n1=127.0.0.1:7001", "--raft-dial", "n2"}, "--raft-dial"},
	} {
		var out, errOut strings.Builder
		args := append([]string{"serve", "--data", t.TempDir(), "--insecure-http"}, tc.args...)
		code := run(context.Background(), args, &out, &errOut, func(string) string { return "" })
		if code == 0 || !strings.Contains(errOut.String(), tc.want) || strings.Count(strings.TrimSpace(errOut.String()), "\n") > 2 {
			t.Errorf("%v: got exit %d, %q; want a short error saying %q", tc.args, code, errOut.String(), tc.want)
		}
	}
}
