package server_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/torchwood"
	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"
	"golang.org/x/mod/sumdb/note"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server"
	"github.com/sparr-dev/sparr/server/hubtest"
	"github.com/sparr-dev/sparr/server/state"
	"github.com/sparr-dev/sparr/server/store"
)

// lookWitness finds torchwood's litewitness and witnessctl on PATH; the
// test is skipped without them, unless SPARR_REQUIRE_WITNESS=1 (as in CI,
// which installs them).
func lookWitness(t *testing.T) (litewitness, witnessctl string) {
	t.Helper()
	lw, err1 := exec.LookPath("litewitness")
	wc, err2 := exec.LookPath("witnessctl")
	if err1 != nil || err2 != nil {
		if os.Getenv("SPARR_REQUIRE_WITNESS") == "1" {
			t.Fatal("litewitness or witnessctl is not on PATH and SPARR_REQUIRE_WITNESS=1: install them with go install filippo.io/torchwood/cmd/litewitness@v0.6.1 filippo.io/torchwood/cmd/witnessctl@v0.6.1 (.ci/run does)")
		}
		t.Skip("litewitness or witnessctl is not on PATH: install them (go install filippo.io/torchwood/cmd/litewitness@v0.6.1 filippo.io/torchwood/cmd/witnessctl@v0.6.1) to run this test, or set SPARR_REQUIRE_WITNESS=1 to fail without them")
	}
	return lw, wc
}

// liteWitness is a running litewitness: its URL, its key, and its
// database.
type liteWitness struct {
	URL, Key, db, ctl string
}

// startLitewitness starts litewitness on a free loopback port, its key
// held by an ssh-agent served in the test process (litewitness signs only
// through the ssh-agent protocol), and witnesses nothing until addLog.
func startLitewitness(t *testing.T) *liteWitness {
	t.Helper()
	bin, ctl := lookWitness(t)
	// A Unix socket's path is short: not under t.TempDir().
	dir, err := os.MkdirTemp("", "lw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	seed := sha256.Sum256([]byte("litewitness interop"))
	priv := ed25519.NewKeyFromSeed(seed[:])
	keyring := agent.NewKeyring()
	if err := keyring.Add(agent.AddedKey{PrivateKey: priv}); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "agent.sock")
	al, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { al.Close() })
	go func() {
		for {
			c, err := al.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				agent.ServeAgent(keyring, c)
			}()
		}
	}()
	sshPub, err := ssh.NewPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	const name = "witness.test/litewitness"
	signer, err := torchwood.NewCosignatureSigner(name, priv)
	if err != nil {
		t.Fatal(err)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	w := &liteWitness{URL: "http://" + addr, Key: signer.Verifier().String(), db: filepath.Join(dir, "litewitness.db"), ctl: ctl}
	var logs bytes.Buffer
	cmd := exec.Command(bin, "-db", w.db, "-name", name, "-key", ssh.FingerprintSHA256(sshPub), "-ssh-agent", sock, "-listen", addr)
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		if t.Failed() {
			t.Logf("litewitness:\n%s", logs.String())
		}
	})
	waitFor(t, "litewitness listening", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
	return w
}

// addLog has the witness witness a log, from the empty tree, as its
// operator does with witnessctl.
func (w *liteWitness) addLog(t *testing.T, origin, logKey string) {
	t.Helper()
	for _, args := range [][]string{
		{"add-log", "-db", w.db, "-origin", origin},
		{"add-key", "-db", w.db, "-origin", origin, "-key", logKey},
	} {
		if out, err := exec.Command(w.ctl, args...).CombinedOutput(); err != nil {
			t.Fatalf("witnessctl %s: %v: %s", args[0], err, out)
		}
	}
}

// TestLitewitnessCosignsAndRefusesAFork runs the hub with a witness
// nobody here wrote, torchwood's litewitness: its cosignatures arrive on
// the checkpoint the hub serves, checkpoint after checkpoint (each with
// its consistency proof), and verify with the witness's key. Then a second
// hub, made from a backup of the first with the same log key, grows
// another history to the same size and signs it: the witness refuses that
// fork, and it stays without a cosignature.
func TestLitewitnessCosignsAndRefusesAFork(t *testing.T) {
	lw := startLitewitness(t)
	witness := server.Witness{URL: lw.URL, Key: lw.Key}
	hub := hubtest.Start(t, hubtest.Options{Configure: func(cfg *server.Config) {
		cfg.Witnesses = []server.Witness{witness}
		cfg.WitnessRetry, cfg.WitnessRetryMax = 10*time.Millisecond, 100*time.Millisecond
	}})
	lw.addLog(t, hub.Keys.LogOrigin, hub.Keys.LogVerifier)
	logKey, err := protocol.NewLogVerifier(hub.Keys.LogVerifier)
	if err != nil {
		t.Fatal(err)
	}
	wkey, err := protocol.NewWitnessVerifier(lw.Key)
	if err != nil {
		t.Fatal(err)
	}
	cosigned := func(url string) (*protocol.Checkpoint, []protocol.Cosignature) {
		t.Helper()
		resp, err := http.Get(url + "/v1/log/checkpoint")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		msg, _ := io.ReadAll(resp.Body)
		c, signed, err := protocol.VerifyCosigned(msg, logKey, []note.Verifier{wkey}, 0)
		if err != nil {
			t.Fatalf("checkpoint %q: %v", msg, err)
		}
		return c, signed
	}

	bank := hub.AddMember(t, "bank-a", api.RoleCheck)
	toks := bank.Tokenize(t, protocol.TypeEmail, "lite@example.se")
	var backup bytes.Buffer
	for round := range 2 {
		for range 4 {
			check(t, bank, "payment", toks...)
		}
		published := time.Now()
		if _, err := hub.PublishCheckpoint(); err != nil {
			t.Fatal(err)
		}
		size, _ := hub.Store.LogSize()
		waitFor(t, fmt.Sprintf("round %d: litewitness's cosignature at %d", round, size), func() bool {
			c, signed := cosigned(hub.URL)
			return c.Size == size && len(signed) == 1
		})
		t.Logf("round %d: checkpoint %d cosigned by litewitness and served %s after it was published", round, size, time.Since(published).Round(time.Millisecond))
		if round == 0 {
			// The backup the fork is made from: this checkpoint, cosigned.
			if _, err := hub.Store.Backup(&backup); err != nil {
				t.Fatal(err)
			}
		}
	}
	c, signed := cosigned(hub.URL)
	if signed[0].Witness != "witness.test/litewitness" || signed[0].Time.IsZero() {
		t.Errorf("got cosignature %+v, want litewitness's, with its time", signed[0])
	}

	// The fork: the same log key, the backup, another history of the
	// same size.
	forkPath := filepath.Join(t.TempDir(), "fork.db")
	if err := os.WriteFile(forkPath, backup.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	forkStore, err := store.Open(forkPath, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer forkStore.Close()
	for n, _ := forkStore.LogSize(); n < c.Size; n++ {
		cmd := &state.Note{Head: state.Head{At: time.Now(), Actor: api.HubID, Entry: state.Entry{Action: protocol.LogBackup}}}
		if _, err := forkStore.Apply(cmd); err != nil {
			t.Fatal(err)
		}
	}
	fork, err := server.New(server.Config{Issuer: "http://fork.invalid", Store: forkStore, Keys: hub.Keys,
		Witnesses: []server.Witness{witness}, WitnessRetry: 10 * time.Millisecond, WitnessRetryMax: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := fork.Start(); err != nil {
		t.Fatal(err)
	}
	defer fork.Close()
	waitFor(t, "the fork refused", func() bool {
		st := fork.WitnessesStatus()
		return st.CheckpointSize == c.Size && st.Witnesses[0].Failures > 0
	})
	st := fork.WitnessesStatus()
	if st.Witnesses[0].CosignedSize != nil || !strings.Contains(st.Witnesses[0].LastError, "422") {
		t.Errorf("got the fork's witness status %+v, want no cosignature and litewitness's 422 (bad consistency proof)", st.Witnesses[0])
	}
	forkNote, size, err := forkStore.Checkpoint()
	if err != nil || size != c.Size {
		t.Fatalf("fork checkpoint: size %d, %v", size, err)
	}
	forked, err := protocol.OpenCheckpoint(forkNote, logKey)
	if err != nil || forked.Root == c.Root {
		t.Fatalf("got the fork's checkpoint %v (%v), want one of size %d with a root other than %v", forked, err, c.Size, c.Root)
	}
	if lines, _ := forkStore.Cosignatures(size); len(lines) != 0 {
		t.Errorf("got cosignatures %q on the fork, want none", lines)
	}
	// And asked directly, with every old size it might claim.
	for _, old := range []uint64{0, c.Size} {
		body := fmt.Sprintf("old %d\n\n%s", old, forkNote)
		resp, err := http.Post(lw.URL+"/add-checkpoint", "text/plain", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		answer, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("old %d: litewitness cosigned the fork: %q", old, answer)
		}
	}
	// The real history is still cosigned.
	if c2, signed := cosigned(hub.URL); c2.Root != c.Root || len(signed) != 1 {
		t.Errorf("got %v with %d cosignatures, want the real checkpoint cosigned", c2, len(signed))
	}
}
