package protocol_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/sparr-dev/sparr/protocol"
)

// testWitness is a witness's cosigning key, made with torchwood as a
// tlog-witness makes its own.
type testWitness struct {
	signer *torchwood.CosignatureSigner
	vkey   string
}

func newTestWitness(t testing.TB, name string) testWitness {
	t.Helper()
	seed := sha256.Sum256([]byte(name))
	s, err := torchwood.NewCosignatureSigner(name, ed25519.NewKeyFromSeed(seed[:]))
	if err != nil {
		t.Fatal(err)
	}
	return testWitness{signer: s, vkey: s.Verifier().String()}
}

// cosign returns w's signature line on the note msg, as a witness's
// add-checkpoint answer carries it.
func (w testWitness) cosign(t testing.TB, msg []byte) string {
	t.Helper()
	n, err := note.Open(msg, note.VerifierList(logVerifierFor(t, msg)))
	if err != nil {
		t.Fatal(err)
	}
	signed, err := note.Sign(&note.Note{Text: n.Text}, w.signer)
	if err != nil {
		t.Fatal(err)
	}
	_, sigs, _ := bytes.Cut(signed, []byte("\n\n"))
	return string(sigs)
}

var testLogSigner, testLogVerifier = func() (note.Signer, note.Verifier) {
	skey, vkey, err := note.GenerateKey(nil, "witness.test/log")
	if err != nil {
		panic(err)
	}
	s, _ := note.NewSigner(skey)
	v, _ := note.NewVerifier(vkey)
	return s, v
}()

func logVerifierFor(testing.TB, []byte) note.Verifier { return testLogVerifier }

func signedCheckpoint(t testing.TB, size uint64, root byte) []byte {
	t.Helper()
	msg, err := protocol.SignCheckpoint(&protocol.Checkpoint{Origin: "witness.test/log", Size: size, Root: tlog.Hash{root}}, testLogSigner)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

func TestNewWitnessVerifier(t *testing.T) {
	w := newTestWitness(t, "witness.example/w1")
	v, err := protocol.NewWitnessVerifier(w.vkey)
	if err != nil {
		t.Fatal(err)
	}
	if v.Name() != "witness.example/w1" || v.KeyHash() != w.signer.KeyHash() {
		t.Errorf("got %s %08x, want witness.example/w1 %08x", v.Name(), v.KeyHash(), w.signer.KeyHash())
	}
	// A plain Ed25519 note key is a witness key too.
	_, ed, err := note.GenerateKey(nil, "old.witness.example")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := protocol.NewWitnessVerifier(ed); err != nil {
		t.Errorf("Ed25519 key: %v", err)
	}
	parts := strings.Split(w.vkey, "+")
	wrongHash := parts[0] + "+00000000+" + parts[2]
	for _, bad := range []string{"", "witness.example", "a+b+c", "w+zzzzzzzz+BA==", wrongHash,
		"w+01234567+" + base64.StdEncoding.EncodeToString(append([]byte{2}, make([]byte, 32)...)), // type 2
		w.vkey + "AA", "wit ness+" + parts[1] + "+" + parts[2],
	} {
		if _, err := protocol.NewWitnessVerifier(bad); !errors.Is(err, protocol.ErrWitnessKey) {
			t.Errorf("NewWitnessVerifier(%q): got %v, want ErrWitnessKey", bad, err)
		}
	}
}

func TestVerifyCosigned(t *testing.T) {
	ws := []testWitness{newTestWitness(t, "w1.example"), newTestWitness(t, "w2.example"), newTestWitness(t, "w3.example")}
	var vs []note.Verifier
	for _, w := range ws {
		v, err := protocol.NewWitnessVerifier(w.vkey)
		if err != nil {
			t.Fatal(err)
		}
		vs = append(vs, v)
	}
	msg := signedCheckpoint(t, 10, 1)
	other := signedCheckpoint(t, 10, 2) // a fork: same size, another root
	cosigned := append(bytes.Clone(msg), ws[0].cosign(t, msg)+ws[2].cosign(t, msg)+ws[1].cosign(t, other)...)

	c, signed, err := protocol.VerifyCosigned(cosigned, testLogVerifier, vs, 2)
	if err != nil {
		t.Fatalf("quorum 2: %v", err)
	}
	if c.Size != 10 || len(signed) != 2 || signed[0].Witness != "w1.example" || signed[1].Witness != "w3.example" {
		t.Fatalf("got %v signed by %+v, want size 10 signed by w1 and w3", c, signed)
	}
	if signed[0].Time.IsZero() {
		t.Error("got no cosignature time, want the witness's timestamp")
	}
	_, _, err = protocol.VerifyCosigned(cosigned, testLogVerifier, vs, 3)
	var qe *protocol.QuorumError
	if !errors.As(err, &qe) || !errors.Is(err, protocol.ErrQuorum) {
		t.Fatalf("quorum 3: got %v, want a QuorumError", err)
	}
	if len(qe.Signed) != 2 || len(qe.Missing) != 1 || qe.Missing[0] != "w2.example" {
		t.Errorf("got signed %+v missing %v, want w2 missing (its signature is on a fork)", qe.Signed, qe.Missing)
	}
	// A changed cosignature counts for nothing.
	line := ws[0].cosign(t, msg)
	tampered := append(bytes.Clone(msg), line[:len(line)-4]+"AAA=\n"...)
	if _, signed, err := protocol.VerifyCosigned(tampered, testLogVerifier, vs, 1); err == nil {
		t.Errorf("tampered cosignature: got %+v, want no quorum", signed)
	}
	// Without the log's signature nothing counts.
	if _, _, err := protocol.VerifyCosigned([]byte(strings.SplitN(string(cosigned), "\n\n", 2)[0]+"\n\n"+ws[0].cosign(t, msg)), testLogVerifier, vs, 1); !errors.Is(err, protocol.ErrCheckpointSignature) {
		t.Errorf("no log signature: got %v, want ErrCheckpointSignature", err)
	}
	if _, _, err := protocol.VerifyCosigned(cosigned, testLogVerifier, vs[:1], 2); err == nil {
		t.Error("quorum larger than the witnesses: got no error")
	}
}

func TestCosignatureLines(t *testing.T) {
	w := newTestWitness(t, "w1.example")
	v, err := protocol.NewWitnessVerifier(w.vkey)
	if err != nil {
		t.Fatal(err)
	}
	msg := signedCheckpoint(t, 3, 7)
	line := w.cosign(t, msg)
	got, err := protocol.CosignatureLines(msg, []byte(line), v)
	if err != nil || len(got) != 1 || got[0]+"\n" != line {
		t.Fatalf("got %q, %v, want [%q]", got, err, line)
	}
	for _, bad := range []string{"", "\n", "not a signature\n", line[:len(line)-1], w.cosign(t, signedCheckpoint(t, 3, 8))} {
		if got, err := protocol.CosignatureLines(msg, []byte(bad), v); err == nil {
			t.Errorf("answer %q: got %q, want an error", bad, got)
		}
	}
}

func FuzzNewWitnessVerifier(f *testing.F) {
	f.Add(newTestWitness(f, "w1.example").vkey)
	f.Add("w+00000000+BA==")
	f.Add("")
	f.Fuzz(func(t *testing.T, vkey string) {
		v, err := protocol.NewWitnessVerifier(vkey)
		if err == nil && (v.Name() == "" || strings.Contains(v.Name(), "+")) {
			t.Fatalf("accepted %q with name %q", vkey, v.Name())
		}
	})
}

func FuzzVerifyCosigned(f *testing.F) {
	w := newTestWitness(f, "w1.example")
	v, err := protocol.NewWitnessVerifier(w.vkey)
	if err != nil {
		f.Fatal(err)
	}
	msg := signedCheckpoint(f, 5, 1)
	f.Add(append(bytes.Clone(msg), w.cosign(f, msg)...), []byte(w.cosign(f, msg)))
	f.Add(msg, []byte("— w1.example AAAA\n"))
	f.Add([]byte{}, []byte{})
	f.Fuzz(func(t *testing.T, cosigned, answer []byte) {
		if _, signed, err := protocol.VerifyCosigned(cosigned, testLogVerifier, []note.Verifier{v}, 1); err == nil && len(signed) != 1 {
			t.Fatalf("quorum met with %d cosignatures", len(signed))
		}
		if lines, err := protocol.CosignatureLines(msg, answer, v); err == nil {
			for _, l := range lines {
				if !bytes.Contains(answer, []byte(l+"\n")) {
					t.Fatalf("line %q not in the answer", l)
				}
			}
		}
	})
}
