package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/sparr-dev/sparr/federation"
	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/server/hubtest"
	"github.com/sparr-dev/sparr/server/keyring"
)

// regulator registers a regulator on hub and writes its private key to a
// file, returning the flags sparr log verify needs.
func regulator(t *testing.T, hub *hubtest.Hub) []string {
	t.Helper()
	reg := hub.AddMember(t, "finansinspektionen", federation.RoleRegulator)
	jwk, err := reg.Key.MarshalPrivateJWK()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "fi.jwk")
	if err := os.WriteFile(keyFile, jwk, 0o600); err != nil {
		t.Fatal(err)
	}
	return []string{"--hub", hub.URL, "--log-key", hub.Keys.LogVerifier, "--state", filepath.Join(dir, "state.json"),
		"--member", reg.ID, "--key", keyFile, "--evidence", filepath.Join(dir, "evidence.json")}
}

func logVerify(t *testing.T, flags []string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), append([]string{"log", "verify"}, flags...), &out, &errOut, func(string) string { return "" })
	return code, out.String(), errOut.String()
}

// busyHub is a hub with some history: flags placed and lifted (with their
// tombstones), checks, a checkpoint.
func busyHub(t *testing.T) (*hubtest.Hub, *hubtest.Member) {
	t.Helper()
	hub := hubtest.Start(t, hubtest.Options{})
	bank := hub.AddMember(t, "bank-a", federation.RoleFlag, federation.RoleCheck)
	grow(t, hub, bank, 3)
	return hub, bank
}

// grow places n flags, lifts the first, checks all, and publishes a
// checkpoint.
func grow(t *testing.T, hub *hubtest.Hub, bank *hubtest.Member, n int) {
	t.Helper()
	var values []string
	for range n {
		var b [6]byte
		rand.Read(b[:])
		values = append(values, "x"+strings.ToLower(strings.TrimRight(string(protocol.Base64URL(b[:]).String()), "-_"))+"@example.se")
	}
	toks := bank.Tokenize(t, protocol.TypeEmail, values...)
	var first string
	for i, tok := range toks {
		resp := bank.Submit(t, "/v1/flags", protocol.PlaceFlag{Subject: tok, Kind: protocol.FlagKindStandard, Consent: bank.Consent(tok)})
		if resp.Status != http.StatusCreated {
			t.Fatalf("place: %d %s", resp.Status, resp.Body)
		}
		if i == 0 {
			var v struct {
				Flag struct {
					FlagID string `json:"flag_id"`
				} `json:"flag"`
			}
			resp.JSON(t, &v)
			first = v.Flag.FlagID
		}
	}
	bank.Submit(t, "/v1/flags/"+first+"/lift", protocol.LiftFlag{FlagID: first})
	texts := make([]string, len(toks))
	for i, tok := range toks {
		texts[i] = tok.String()
	}
	bank.JSON(t, http.MethodPost, "/v1/check", map[string]any{"purpose": "payment", "tokens": texts})
	if _, err := hub.PublishCheckpoint(); err != nil {
		t.Fatal(err)
	}
}

func TestLogVerify(t *testing.T) {
	hub, bank := busyHub(t)
	flags := regulator(t, hub)
	if _, err := hub.PublishCheckpoint(); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := logVerify(t, flags)
	if code != 0 {
		t.Fatalf("first run: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"first run", "trusted on first use", "signature verified", "tombstones:          1", "result:              OK"} {
		if !strings.Contains(out, want) {
			t.Errorf("first run's summary lacks %q:\n%s", want, out)
		}
	}
	var state protocol.LogState
	b, _ := os.ReadFile(flags[5])
	if err := json.Unmarshal(b, &state); err != nil || state.Frontier.Size == 0 {
		t.Fatalf("state file: %v %s", err, b)
	}

	grow(t, hub, bank, 2)
	code, out, errOut = logVerify(t, flags)
	if code != 0 || !strings.Contains(out, "consistency:         proved") {
		t.Fatalf("second run: exit %d, want a proved consistency\n%s%s", code, out, errOut)
	}
}

func TestLogVerifyCatchesAnEditedEntry(t *testing.T) {
	hub, bank := busyHub(t)
	flags := regulator(t, hub)
	hub.PublishCheckpoint()
	if code, out, errOut := logVerify(t, flags); code != 0 {
		t.Fatalf("first run: exit %d\n%s%s", code, out, errOut)
	}
	before, _ := hub.Store.LogSize()
	grow(t, hub, bank, 2)
	// Someone with the disk rewrites who made an entry, leaving the stored
	// hashes alone (which would take the log key to hide): first a new
	// entry, which the next run reads, then an old one, which only a full
	// run reads again.
	edit(t, hub, before+1)
	hub.PublishCheckpoint()
	code, out, _ := logVerify(t, flags)
	if code != 1 || !strings.Contains(out, "VERIFICATION FAILED") || !strings.Contains(out, fmt.Sprintf("Entry %d as served", before+1)) || !strings.Contains(out, "bank-z") {
		t.Fatalf("exit %d, want 1 with the edited entry as evidence:\n%s", code, out)
	}
	ev, err := os.ReadFile(flags[len(flags)-1])
	if err != nil || !bytes.Contains(ev, []byte(fmt.Sprintf(`"entry_index": %d`, before+1))) {
		t.Errorf("evidence file: %v\n%s", err, ev)
	}
	edit(t, hub, before+1) // put it back
	if code, out, _ := logVerify(t, flags); code != 0 {
		t.Fatalf("after the repair: exit %d\n%s", code, out)
	}
	edit(t, hub, 5)
	if code, out, _ := logVerify(t, flags); code != 0 {
		t.Fatalf("incremental run after an old entry changed: exit %d, want 0 (it does not read old entries)\n%s", code, out)
	}
	code, out, _ = logVerify(t, append(flags, "--full"))
	if code != 1 || !strings.Contains(out, "Entry 5 as served") {
		t.Fatalf("--full: exit %d, want 1 with entry 5 as evidence:\n%s", code, out)
	}
}

// edit swaps "bank-a" and "bank-z" in the member field of log entry i,
// in the data file, with the hub stopped.
func edit(t *testing.T, hub *hubtest.Hub, i uint64) {
	t.Helper()
	hub.Offline(t, func(path string) {
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		err = db.Update(func(tx *bolt.Tx) error {
			b := tx.Bucket([]byte("log"))
			k := binary.BigEndian.AppendUint64(nil, i)
			line := bytes.Clone(b.Get(k))
			if bytes.Contains(line, []byte(" bank-a ")) {
				line = bytes.Replace(line, []byte(" bank-a "), []byte(" bank-z "), 1)
			} else {
				line = bytes.Replace(line, []byte(" bank-z "), []byte(" bank-a "), 1)
			}
			return b.Put(k, line)
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

func TestLogVerifyCatchesTruncation(t *testing.T) {
	hub, _ := busyHub(t)
	flags := regulator(t, hub)
	hub.PublishCheckpoint()
	if code, out, errOut := logVerify(t, flags); code != 0 {
		t.Fatalf("first run: exit %d\n%s%s", code, out, errOut)
	}
	// The last entries and the checkpoints covering them are removed.
	hub.Offline(t, func(path string) {
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		db.Update(func(tx *bolt.Tx) error {
			log := tx.Bucket([]byte("log"))
			n := log.Sequence()
			for i := n - 3; i < n; i++ {
				log.Delete(binary.BigEndian.AppendUint64(nil, i))
			}
			log.SetSequence(n - 3)
			cps := tx.Bucket([]byte("checkpoints"))
			c := cps.Cursor()
			for k, _ := c.Seek(binary.BigEndian.AppendUint64(nil, n-2)); k != nil; k, _ = c.Next() {
				cps.Delete(k)
			}
			return nil
		})
	})
	code, out, _ := logVerify(t, flags)
	if code != 1 || !strings.Contains(out, "shorter than an earlier checkpoint") || !strings.Contains(out, "Earlier checkpoint") {
		t.Fatalf("exit %d, want 1 with both checkpoints:\n%s", code, out)
	}
}

func TestLogVerifyRefusesAnotherKey(t *testing.T) {
	hub, _ := busyHub(t)
	flags := regulator(t, hub)
	// A key for the same log name that the hub never had.
	other := t.TempDir()
	if _, err := keyring.Init(other, keyring.Options{LogOrigin: hub.Keys.LogOrigin}); err != nil {
		t.Fatal(err)
	}
	otherKeys, err := keyring.Load(other)
	if err != nil {
		t.Fatal(err)
	}
	flags[3] = otherKeys.LogVerifier
	code, out, _ := logVerify(t, flags)
	if code != 1 || !strings.Contains(out, "not signed by the log key") {
		t.Fatalf("exit %d, want 1: checkpoint not signed by the pinned key:\n%s", code, out)
	}
	if _, err := os.Stat(flags[5]); !os.IsNotExist(err) {
		t.Error("a failed first run wrote a state file")
	}
}
