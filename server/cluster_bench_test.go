package server_test

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/sparr-dev/sparr/client"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/hubtest"
)

// BenchmarkCluster measures placements and checks over loopback HTTP on a
// 3-node cluster (raft over TCP on loopback, a bbolt file and a raft log
// each, every write committed by a majority before it is answered),
// beside the single-node hub in the same run, so that the ratio is what
// to compare:
//
//	go test ./server -run '^$' -bench Cluster -count 3
//
// "leader" sends every request to the leader; "follower" to a follower,
// which forwards it.
func BenchmarkCluster(b *testing.B) {
	for _, op := range []string{"place", "check"} {
		for _, where := range []string{"single", "leader", "follower"} {
			b.Run(op+"/"+where, func(b *testing.B) {
				var node *hubtest.Hub
				if where == "single" {
					node = hubtest.Start(b, hubtest.Options{Limits: unlimited})
				} else {
					c := hubtest.StartCluster(b, hubtest.ClusterOptions{Options: hubtest.Options{Limits: unlimited}})
					node = c.Leader(b)
					if where == "follower" {
						node = c.Followers(b)[0]
					}
				}
				benchWrites(b, node, op)
			})
		}
	}
}

func benchWrites(b *testing.B, node *hubtest.Hub, op string) {
	bank := node.AddMember(b, "bank-a", api.RoleFlag, api.RoleCheck)
	n := b.N
	if op == "check" {
		n = min(n, 200)
	}
	values := make([]string, n)
	for i := range values {
		values[i] = fmt.Sprintf("cluster%d@example.se", i)
	}
	var bodies [][]byte
	var toks []protocol.Token
	for i := 0; i < n; i += protocol.MaxTokenBatch {
		toks = append(toks, bank.Tokenize(b, protocol.TypeEmail, values[i:min(i+protocol.MaxTokenBatch, n)]...)...)
	}
	path, ctype, want := "/v1/flags", "application/jose", http.StatusCreated
	if op == "place" {
		for _, tok := range toks {
			bodies = append(bodies, bank.Sign(b, protocol.PlaceFlag{Subject: tok, Kind: protocol.FlagKindStandard, Consent: bank.Consent(tok)}))
		}
	} else {
		for _, tok := range toks[:len(toks)/10] {
			if r := bank.Submit(b, "/v1/flags", protocol.PlaceFlag{Subject: tok, Kind: protocol.FlagKindStandard, Consent: bank.Consent(tok)}); r.Status != http.StatusCreated {
				b.Fatalf("place: %d %s", r.Status, r.Body)
			}
		}
		texts := make([]string, len(toks))
		for i, t := range toks {
			texts[i] = t.String()
		}
		bodies = checkBodies(texts)
		path, ctype, want = "/v1/check", "application/json", http.StatusOK
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConns: 64, MaxIdleConnsPerHost: 64}}
	defer hc.CloseIdleConnections()
	c := loopbackClient(b, node, bank, hc)
	var i atomic.Int64
	b.ResetTimer()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			body := bodies[int(i.Add(1)-1)%len(bodies)]
			resp, err := c.Raw(context.Background(), client.RawRequest{Method: http.MethodPost, Path: path, ContentType: ctype, Body: body})
			if err != nil {
				b.Error(err)
				return
			}
			if resp.Status != want {
				b.Errorf("got %d %s, want %d", resp.Status, resp.Body, want)
				return
			}
		}
	})
}
