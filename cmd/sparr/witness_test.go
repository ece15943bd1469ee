package main

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server"
	"github.com/sparr-dev/sparr/server/decide"
	"github.com/sparr-dev/sparr/server/hubtest"
)

// TestLogVerifyQuorum: with --witness and --quorum, log verify accepts the
// latest checkpoint only with enough valid cosignatures, and says who
// signed; short of the quorum it exits 1 with one line and keeps nothing.
func TestLogVerifyQuorum(t *testing.T) {
	w1, w2 := hubtest.StartWitness(t, "w1.example"), hubtest.StartWitness(t, "w2.example")
	hub := hubtest.Start(t, hubtest.Options{Policy: decide.Policy{ErasurePeriod: time.Nanosecond}, Configure: func(cfg *server.Config) {
		cfg.Witnesses = []server.Witness{w1.Config(), w2.Config()}
		cfg.WitnessRetry, cfg.WitnessRetryMax = 5*time.Millisecond, 50*time.Millisecond
	}})
	w1.AddLog(t, hub.Keys.LogVerifier) // w2 never learns of the log: it refuses
	bank := hub.AddMember(t, "bank-a", api.RoleFlag, api.RoleCheck)
	grow(t, hub, bank, 2)
	for i := 0; ; i++ {
		st := hub.WitnessesStatus()
		if c := st.Witnesses[0].CosignedSize; c != nil && *c == st.CheckpointSize {
			break
		}
		if i == 500 {
			t.Fatal("gave up waiting for w1 to cosign")
		}
		time.Sleep(20 * time.Millisecond)
	}
	flags := regulator(t, hub)
	state := flags[slices.Index(flags, "--state")+1]
	keys := []string{"--witness", w1.Key, "--witness", w2.Key}

	code, out, errOut := logVerify(t, append(append(flags, keys...), "--quorum", "2"))
	if code != 1 || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "cosigned by 1 of the 2 witnesses given (w1.example), the quorum is 2") {
		t.Fatalf("quorum 2: got exit %d, stderr %q, stdout %q; want exit 1 and one line saying w1 alone cosigned", code, errOut, out)
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("quorum not met: got the state file kept (%v), want nothing kept", err)
	}
	code, out, _ = logVerify(t, append(append(flags, keys...), "--quorum", "2", "--json"))
	var doc map[string]any
	if err := json.Unmarshal([]byte(out), &doc); code != 1 || err != nil || doc["result"] != "quorum-not-met" {
		t.Errorf("quorum 2 --json: got exit %d, %q, want result quorum-not-met", code, out)
	}

	code, out, errOut = logVerify(t, append(append(flags, keys...), "--quorum", "1"))
	if code != 0 || !strings.Contains(out, "witnesses:           cosigned by 1 of 2 (quorum 1): w1.example; not by w2.example") {
		t.Fatalf("quorum 1: got exit %d, stdout %q, stderr %q; want it verified, saying w1 signed and w2 did not", code, out, errOut)
	}
	code, out, _ = logVerify(t, append(append(flags, keys...), "--quorum", "1", "--json"))
	doc = nil
	if err := json.Unmarshal([]byte(out), &doc); code != 0 || err != nil || doc["result"] != "verified" {
		t.Fatalf("quorum 1 --json: got exit %d, %q", code, out)
	}
	ws, _ := doc["witnesses"].([]any)
	if len(ws) != 2 || ws[0].(map[string]any)["name"] != "w1.example" || ws[0].(map[string]any)["cosigned"] != true || ws[1].(map[string]any)["cosigned"] != false {
		t.Errorf("got witnesses %v in --json, want w1 cosigned and w2 not", doc["witnesses"])
	}

	for _, bad := range [][]string{
		append(slices.Clone(keys), "--quorum", "3"),
		{"--quorum", "1"},
		{"--witness", "not-a-key"},
		{"--witness", w1.Key, "--witness", w1.Key},
	} {
		if code, _, errOut := logVerify(t, append(slices.Clone(flags), bad...)); code != 2 || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%q: got exit %d, stderr %q, want a usage error on one line", bad, code, errOut)
		}
	}
}

// FuzzWitnessFlags: serve's and log verify's --witness take only what
// they can use, and what they take they give back.
func FuzzWitnessFlags(f *testing.F) {
	w := hubtest.StartWitness(f, "fuzz.example")
	f.Add("https://witness.example " + w.Key)
	f.Add("https://a.example " + w.Key + ",http://b.example " + w.Key)
	f.Add(w.Key)
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		var ws witnessesValue
		if err := ws.Set(s); err == nil {
			for _, w := range ws {
				if !strings.HasPrefix(w.URL, "http") || strings.ContainsAny(w.URL+w.Key, " ,") {
					t.Fatalf("took %+v from %q", w, s)
				}
			}
			var again witnessesValue
			if err := again.Set(ws.String()); err != nil || len(again) != len(ws) {
				t.Fatalf("%q: its String %q does not parse back: %v", s, ws.String(), err)
			}
		}
		var keys witnessKeysValue
		if err := keys.Set(s); err == nil && len(keys) == 0 {
			t.Fatalf("took no key from %q without an error", s)
		}
	})
}

// TestLogVerifyQuorumFailsOnAFork: a hub put back on an older copy of its
// data file and grown again serves a fork of the log its witness cosigned.
// The witness refuses to cosign the fork, so log verify with a quorum
// refuses it, even for a regulator who kept no checkpoint of their own.
func TestLogVerifyQuorumFailsOnAFork(t *testing.T) {
	w := hubtest.StartWitness(t, "w1.example")
	hub := hubtest.Start(t, hubtest.Options{Configure: func(cfg *server.Config) {
		cfg.Witnesses = []server.Witness{w.Config()}
		cfg.WitnessRetry, cfg.WitnessRetryMax = 5*time.Millisecond, 50*time.Millisecond
	}})
	w.AddLog(t, hub.Keys.LogVerifier)
	bank := hub.AddMember(t, "bank-a", api.RoleFlag, api.RoleCheck)
	flags := regulator(t, hub)
	quorum := []string{"--witness", w.Key, "--quorum", "1"}
	waitWitness := func(what string, done func(api.WitnessStatus, uint64) bool) {
		t.Helper()
		for i := 0; ; i++ {
			st := hub.WitnessesStatus()
			if len(st.Witnesses) == 1 && done(st.Witnesses[0], st.CheckpointSize) {
				return
			}
			if i == 500 {
				t.Fatalf("gave up waiting for the witness to %s: %+v", what, st)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	cosigned := func(s api.WitnessStatus, size uint64) bool { return s.CosignedSize != nil && *s.CosignedSize == size }

	grow(t, hub, bank, 2)
	waitWitness("cosign", cosigned)
	var saved []byte
	hub.Offline(t, func(path string) {
		var err error
		if saved, err = os.ReadFile(path); err != nil {
			t.Fatal(err)
		}
	})
	grow(t, hub, bank, 3)
	waitWitness("cosign", cosigned)
	if code, out, errOut := logVerify(t, append(slices.Clone(flags), quorum...)); code != 0 {
		t.Fatalf("honest log: got exit %d, %s%s; want it verified", code, out, errOut)
	}
	honest := *hub.WitnessesStatus().Witnesses[0].CosignedSize

	// The fork: the older copy, grown past the cosigned size otherwise.
	hub.Offline(t, func(path string) {
		if err := os.WriteFile(path, saved, 0o600); err != nil {
			t.Fatal(err)
		}
	})
	grow(t, hub, bank, 6)
	waitWitness("refuse the fork", func(s api.WitnessStatus, size uint64) bool { return size > honest && s.Failures > 0 })

	fresh := slices.Clone(flags)
	fresh[slices.Index(fresh, "--state")+1] = t.TempDir() + "/state.json"
	code, out, errOut := logVerify(t, append(fresh, quorum...))
	if code != 1 || !strings.Contains(errOut, "cosigned by 0 of the 1 witnesses given") {
		t.Fatalf("forked log: got exit %d, stdout %q, stderr %q; want exit 1, saying no witness cosigned it", code, out, errOut)
	}
	if code, out, errOut := logVerify(t, fresh); code != 0 {
		t.Errorf("the fork without --witness: got exit %d, %s%s; want it verified (only witnesses can tell it from the log)", code, out, errOut)
	}
}
