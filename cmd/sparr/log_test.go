package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/decide"
	"github.com/sparr-dev/sparr/server/hubtest"
	"github.com/sparr-dev/sparr/server/keyring"
)

// regulator registers a regulator on hub and writes its private key to a
// file, returning the flags sparr log verify needs.
func regulator(t *testing.T, hub *hubtest.Hub) []string {
	t.Helper()
	reg := hub.AddMember(t, "finansinspektionen", api.RoleRegulator)
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
	// Erasures are published as soon as they are made, not a day later.
	hub := hubtest.Start(t, hubtest.Options{Policy: decide.Policy{ErasurePeriod: time.Nanosecond}})
	bank := hub.AddMember(t, "bank-a", api.RoleFlag, api.RoleCheck)
	grow(t, hub, bank, 3)
	return hub, bank
}

// grow places n flags, lifts the first (and publishes its tombstone),
// checks all, and publishes a checkpoint.
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
	if err := hub.RunJobs(); err != nil { // the lift's tombstone
		t.Fatal(err)
	}
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
	// A full run counts the whole log and says so, apart from what is new.
	grow(t, hub, bank, 1)
	size, _ := hub.Store.LogSize()
	code, out, errOut = logVerify(t, append(flags, "--full"))
	if code != 0 {
		t.Fatalf("full run: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{fmt.Sprintf("whole log:           %d entries checked (--full)", size), "new entries:         ",
		"by action (whole log): ", "tombstones:          3 in the whole log"} {
		if !strings.Contains(out, want) {
			t.Errorf("full run's summary lacks %q:\n%s", want, out)
		}
	}

	// With --json, the same as one JSON document.
	grow(t, hub, bank, 1)
	size, _ = hub.Store.LogSize()
	code, out, errOut = logVerify(t, append(flags, "--json"))
	if code != 0 {
		t.Fatalf("--json run: exit %d\n%s%s", code, out, errOut)
	}
	var doc struct {
		Result            string `json:"result"`
		State             string `json:"state"`
		FirstRun          bool   `json:"first_run"`
		EarlierCheckpoint *struct {
			Size uint64 `json:"size"`
			Root string `json:"root"`
		} `json:"earlier_checkpoint"`
		LatestCheckpoint struct {
			Size uint64 `json:"size"`
			Root string `json:"root"`
		} `json:"latest_checkpoint"`
		NewEntries     uint64            `json:"new_entries"`
		EntriesChecked uint64            `json:"entries_checked"`
		Tombstones     uint64            `json:"tombstones"`
		Actions        map[string]uint64 `json:"actions"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("--json printed what is not JSON: %v\n%s", err, out)
	}
	var checkedActions uint64
	for _, n := range doc.Actions {
		checkedActions += n
	}
	if doc.Result != "verified" || doc.State != flags[5] || doc.FirstRun || doc.EarlierCheckpoint == nil ||
		doc.LatestCheckpoint.Size != uint64(size) || doc.LatestCheckpoint.Root == "" || doc.EarlierCheckpoint.Size >= doc.LatestCheckpoint.Size ||
		doc.NewEntries != doc.LatestCheckpoint.Size-doc.EarlierCheckpoint.Size || doc.EntriesChecked != doc.NewEntries || checkedActions != doc.EntriesChecked || doc.Tombstones != 1 {
		t.Errorf("--json run printed %+v, want verified up to %d, with one tombstone and its actions counted:\n%s", doc, size, out)
	}

	// An outcome that cannot be printed is no finding against the log:
	// exit 3, never 1.
	var errOut2 bytes.Buffer
	if code := run(context.Background(), append([]string{"log", "verify", "--json"}, flags...), failingWriter{}, &errOut2, func(string) string { return "" }); code != exitCouldNotCheck {
		t.Errorf("--json to a stdout that fails: exit %d, want %d\n%s", code, exitCouldNotCheck, errOut2.String())
	}
}

// A failingWriter fails every write, as a full disk does.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("no space left on device") }

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
	ev := evidence(t, flags)
	if ev["entry_index"] != float64(before+1) || !strings.Contains(ev["entry"].(string), " bank-z ") {
		t.Errorf("evidence: got entry %v %q, want entry %d as served", ev["entry_index"], ev["entry"], before+1)
	}
	// Both checkpoints: the one kept from the run before, and the new one
	// the entry fails against.
	var state protocol.LogState
	b, _ := os.ReadFile(flags[5])
	if err := json.Unmarshal(b, &state); err != nil {
		t.Fatal(err)
	}
	latest, _, _ := hub.Store.Checkpoint()
	if ev["earlier_checkpoint"] != string(state.Checkpoint) || ev["latest_checkpoint"] != string(latest) || !strings.Contains(out, "Earlier checkpoint") {
		t.Errorf("evidence: got earlier checkpoint %q and latest %q, want the kept %q and the served %q", ev["earlier_checkpoint"], ev["latest_checkpoint"], state.Checkpoint, latest)
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
	code, out, _ = logVerify(t, append(flags, "--full", "--json"))
	var doc map[string]any
	if err := json.Unmarshal([]byte(out), &doc); code != 1 || err != nil || doc["result"] != "failed" || doc["entry_index"] != 5.0 || !strings.Contains(doc["entry"].(string), " bank-") {
		t.Fatalf("--full --json: exit %d, %v; want 1 and the evidence against entry 5 as JSON:\n%s", code, err, out)
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
		err = db.Update(func(tx *bolt.Tx) error {
			log := tx.Bucket([]byte("log"))
			n := log.Sequence()
			for i := n - 3; i < n; i++ {
				if err := log.Delete(binary.BigEndian.AppendUint64(nil, i)); err != nil {
					return err
				}
			}
			if err := log.SetSequence(n - 3); err != nil {
				return err
			}
			// Collect first: deleting while a cursor walks skips keys.
			cps := tx.Bucket([]byte("checkpoints"))
			var drop [][]byte
			c := cps.Cursor()
			for k, _ := c.Seek(binary.BigEndian.AppendUint64(nil, n-2)); k != nil; k, _ = c.Next() {
				drop = append(drop, bytes.Clone(k))
			}
			if len(drop) == 0 {
				return fmt.Errorf("no checkpoint covers the last entries")
			}
			for _, k := range drop {
				if err := cps.Delete(k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
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

// evidence reads the evidence file of a failed run.
func evidence(t *testing.T, flags []string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(flags[len(flags)-1])
	if err != nil {
		t.Fatalf("evidence file: %v", err)
	}
	var ev map[string]any
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatalf("evidence file: %v\n%s", err, b)
	}
	return ev
}

// TestLogVerifyKeepsACheckpointSignedByAnotherKey: after a verified run,
// the regulator is served a checkpoint signed by a key that is not the
// hub's log key (by whoever sits between it and the hub: the hub itself
// refuses to start on a data file whose checkpoint is not its own); the
// run fails and the evidence holds that checkpoint as served.
func TestLogVerifyKeepsACheckpointSignedByAnotherKey(t *testing.T) {
	hub, _ := busyHub(t)
	flags := regulator(t, hub)
	if code, out, errOut := logVerify(t, flags); code != 0 {
		t.Fatalf("first run: exit %d\n%s%s", code, out, errOut)
	}
	kept, _ := os.ReadFile(flags[5])
	// Someone with another key of the log's name signs a bigger
	// checkpoint, and serves it as the hub's latest.
	other := t.TempDir()
	if _, err := keyring.Init(other, keyring.Options{LogOrigin: hub.Keys.LogOrigin}); err != nil {
		t.Fatal(err)
	}
	otherKeys, err := keyring.Load(other)
	if err != nil {
		t.Fatal(err)
	}
	size, _ := hub.Store.LogSize()
	forged, err := protocol.SignCheckpoint(&protocol.Checkpoint{Origin: hub.Keys.LogOrigin, Size: size + 100, Root: protocol.EmptyRoot()}, otherKeys.Log)
	if err != nil {
		t.Fatal(err)
	}
	target, err := url.Parse(hub.URL)
	if err != nil {
		t.Fatal(err)
	}
	forward := httputil.NewSingleHostReverseProxy(target)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/log/checkpoint" {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Write(forged)
			return
		}
		forward.ServeHTTP(w, r)
	}))
	defer proxy.Close()
	flags[1] = proxy.URL
	code, out, _ := logVerify(t, flags)
	if code != 1 || !strings.Contains(out, "VERIFICATION FAILED") || !strings.Contains(out, string(forged)) {
		t.Fatalf("exit %d, want 1 with the checkpoint as served:\n%s", code, out)
	}
	ev := evidence(t, flags)
	var state protocol.LogState
	if err := json.Unmarshal(kept, &state); err != nil {
		t.Fatal(err)
	}
	if ev["served_checkpoint"] != string(forged) || ev["earlier_checkpoint"] != string(state.Checkpoint) || ev["kind"] != protocol.ErrCheckpointSignature.Error() {
		t.Errorf("evidence: got %v, want the served checkpoint %q, the kept one, and the kind", ev, forged)
	}
	if now, _ := os.ReadFile(flags[5]); !bytes.Equal(now, kept) {
		t.Error("a failed run changed the state file")
	}
}

// TestLogVerifyLocalProblemsSayWhatToFix: a key file, a state file that
// cannot be used, or a state file that cannot be written is no reason to
// run again later or to ask the hub's operator: the run says what to fix,
// and what was verified.
func TestLogVerifyLocalProblemsSayWhatToFix(t *testing.T) {
	hub, _ := busyHub(t)
	flags := regulator(t, hub)
	later := "Run it again later"
	t.Run("key file", func(t *testing.T) {
		args := slices.Clone(flags)
		args[9] = filepath.Join(t.TempDir(), "missing.jwk")
		code, out, errOut := logVerify(t, args)
		if code != exitCouldNotCheck || !strings.Contains(out, "--key") || !strings.Contains(out, "Fix that") || strings.Contains(out, later) {
			t.Errorf("got exit %d, want %d saying to fix --key, not to run it later:\n%s%s", code, exitCouldNotCheck, out, errOut)
		}
	})
	t.Run("state of another log", func(t *testing.T) {
		other := hubtest.Start(t, hubtest.Options{})
		args := slices.Clone(flags)
		args[1], args[3] = other.URL, other.Keys.LogVerifier
		args[7], args[9] = regulatorOf(t, other)
		if code, out, errOut := logVerify(t, args); code != 0 { // a state file of the other hub's log
			t.Fatalf("first run: exit %d\n%s%s", code, out, errOut)
		}
		args[1], args[3] = flags[1], flags[3] // the state file kept, the hub and log key of the first
		args[7], args[9] = flags[7], flags[9]
		code, out, errOut := logVerify(t, args)
		if code != exitCouldNotCheck || !strings.Contains(out, "restore it from your copy") || strings.Contains(out, later) {
			t.Errorf("got exit %d, want %d saying to restore or move the state file, not to run it later:\n%s%s", code, exitCouldNotCheck, out, errOut)
		}
	})
	t.Run("state not writable", func(t *testing.T) {
		args := slices.Clone(flags)
		args[5] = filepath.Join(t.TempDir(), "no-such-dir", "state.json")
		code, out, errOut := logVerify(t, args)
		if code != exitCouldNotCheck || !strings.Contains(out, "verified up to") || strings.Contains(out, "nothing was verified") {
			t.Errorf("got exit %d, want %d saying the log verified but the checkpoint was not kept:\n%s%s", code, exitCouldNotCheck, out, errOut)
		}
	})
}

// regulatorOf adds a regulator to hub and returns its member id and key
// file.
func regulatorOf(t *testing.T, hub *hubtest.Hub) (string, string) {
	f := regulator(t, hub)
	return f[7], f[9]
}

// TestLogVerifyCouldNotCheck: a hub that cannot be reached, refuses, or
// stays unavailable is not evidence against the log: its own exit status,
// no evidence file, the state file kept.
func TestLogVerifyCouldNotCheck(t *testing.T) {
	hub, _ := busyHub(t)
	flags := regulator(t, hub)
	if code, out, errOut := logVerify(t, flags); code != 0 {
		t.Fatalf("first run: exit %d\n%s%s", code, out, errOut)
	}
	kept, _ := os.ReadFile(flags[5])
	gone := httptest.NewServer(http.NotFoundHandler())
	gone.Close()
	unavailable := &faultProxy{hub: hub, path: "/v1/log/entries", status: http.StatusServiceUnavailable, retryAfter: "0", times: -1}
	unavailableURL := unavailable.start(t)
	// A wait too long for a Duration (2⁶⁴ ns and a bit, which wraps to 0.29 s
	// if multiplied out) is over logRetryMaxWait: given up at once.
	patient := &faultProxy{hub: hub, path: "/v1/log/entries", status: http.StatusTooManyRequests, retryAfter: "18446744074", times: -1}
	patientURL := patient.start(t)

	for _, tc := range []struct {
		name  string
		hub   string
		setup func()
	}{
		{"unreachable", gone.URL, nil},
		{"unavailable every time", unavailableURL, func() {
			// The log has grown, so that entries are fetched.
			grow(t, hub, hub.AddMember(t, "bank-u", api.RoleFlag, api.RoleCheck), 1)
		}},
		{"asks to wait for ages", patientURL, nil},
		{"refused: the regulator suspended", hub.URL, func() {
			mustOK(t, hub.Operator.Do(t, http.MethodPost, "/v1/admin/members/finansinspektionen/suspend", "", nil))
		}},
	} {
		if tc.setup != nil {
			tc.setup()
		}
		args := slices.Clone(flags)
		args[1] = tc.hub
		code, out, errOut := logVerify(t, args)
		if code != exitCouldNotCheck || !strings.Contains(out, "could not check") || strings.Contains(out, "VERIFICATION FAILED") {
			t.Errorf("%s: got exit %d, want %d (could not check)\n%s%s", tc.name, code, exitCouldNotCheck, out, errOut)
		}
		code, out, errOut = logVerify(t, append(args, "--json"))
		var doc map[string]any
		if err := json.Unmarshal([]byte(out), &doc); code != exitCouldNotCheck || err != nil || doc["result"] != "could-not-check" || doc["error"] == nil || doc["error"] == "" {
			t.Errorf("%s with --json: exit %d, %v; want %d and the error as JSON\n%s%s", tc.name, code, err, exitCouldNotCheck, out, errOut)
		}
		if _, err := os.Stat(flags[len(flags)-1]); !os.IsNotExist(err) {
			t.Errorf("%s: got an evidence file, want none", tc.name)
		}
		if now, _ := os.ReadFile(flags[5]); !bytes.Equal(now, kept) {
			t.Errorf("%s: the state file changed", tc.name)
		}
	}
	// Each case ran twice, with text and with --json.
	if n := unavailable.count(); n != 2*logFetchAttempts {
		t.Errorf("got %d requests for entries from a hub always unavailable in two runs, want %d: retried, then given up", n, 2*logFetchAttempts)
	}
	if n := patient.count(); n != 2 {
		t.Errorf("got %d requests for entries from a hub asking to wait for ages in two runs, want 2: given up at once", n)
	}
}

// TestLogVerifyRetriesRateLimited: a 429 is waited out as its Retry-After
// says, and the run goes on.
func TestLogVerifyRetriesRateLimited(t *testing.T) {
	hub, _ := busyHub(t)
	flags := regulator(t, hub)
	limited := &faultProxy{hub: hub, path: "/v1/log/entries", status: http.StatusTooManyRequests, retryAfter: "1", times: 1}
	flags[1] = limited.start(t)
	if code, out, errOut := logVerify(t, flags); code != 0 || !strings.Contains(out, "result:              OK") {
		t.Fatalf("exit %d, want 0 after waiting out the 429\n%s%s", code, out, errOut)
	}
	if n := limited.count(); n < 2 {
		t.Errorf("got %d requests for entries, want the refused one sent again", n)
	}
}

// A faultProxy passes requests on to a hub, answering the first times
// requests for path with status and Retry-After instead (times < 0: all).
type faultProxy struct {
	hub        *hubtest.Hub
	path       string
	status     int
	retryAfter string
	times      int

	mu sync.Mutex
	n  int
}

func (p *faultProxy) start(t *testing.T) string {
	target, err := url.Parse(p.hub.URL)
	if err != nil {
		t.Fatal(err)
	}
	pass := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == p.path {
			p.mu.Lock()
			p.n++
			fail := p.times < 0 || p.n <= p.times
			p.mu.Unlock()
			if fail {
				w.Header().Set("Retry-After", p.retryAfter)
				w.Header().Set("Content-Type", protocol.ProblemContentType)
				w.WriteHeader(p.status)
				fmt.Fprintf(w, `{"type":"about:blank","title":%q,"status":%d}`, http.StatusText(p.status), p.status)
				return
			}
		}
		pass.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func (p *faultProxy) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

func mustOK(t *testing.T, resp *hubtest.Response) {
	t.Helper()
	if resp.Status != http.StatusOK {
		t.Fatalf("got status %d, want 200: %s", resp.Status, resp.Body)
	}
}
