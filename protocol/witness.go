package protocol

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"
)

// Errors about witnesses and their cosignatures.
var (
	// ErrWitnessKey is returned by [NewWitnessVerifier] for text that is
	// not a witness's note verifier key.
	ErrWitnessKey = errors.New("malformed witness key")
	// ErrQuorum is returned (as a [*QuorumError]) by [VerifyCosigned]
	// when fewer witnesses than the quorum cosigned the checkpoint.
	ErrQuorum = errors.New("too few witness cosignatures")
)

// Signature algorithms of note verifier keys (c2sp.org/signed-note).
const (
	algEd25519       = 1 // a plain Ed25519 note signature
	algCosignatureV1 = 4 // a timestamped cosignature, c2sp.org/tlog-cosignature
)

// MaxWitnesses bounds the witnesses one verification or one hub takes.
const MaxWitnesses = 64

// NewWitnessVerifier parses a witness's public key, a note verifier key
// "<name>+<hash>+<base64 key>" (c2sp.org/signed-note). A tlog-witness
// signs timestamped cosignatures (c2sp.org/tlog-cosignature, key type
// 0x04), which are verified with filippo.io/torchwood; a key of type 0x01,
// a plain Ed25519 note signature, is accepted too, as older witnesses
// sign.
func NewWitnessVerifier(vkey string) (note.Verifier, error) {
	vkey = strings.TrimSpace(vkey)
	fail := func(format string, args ...any) (note.Verifier, error) {
		return nil, fmt.Errorf("%w %q: %s (want <name>+<hash>+<key>, as the witness publishes it)", ErrWitnessKey, vkey, fmt.Sprintf(format, args...))
	}
	name, rest, ok1 := strings.Cut(vkey, "+")
	hash16, key64, ok2 := strings.Cut(rest, "+")
	if !ok1 || !ok2 || name == "" || strings.ContainsFunc(name, func(r rune) bool { return r == ' ' || r == '\t' || r == '\n' }) {
		return fail("not three parts separated by +")
	}
	hash, err := strconv.ParseUint(hash16, 16, 32)
	if err != nil || len(hash16) != 8 {
		return fail("key hash %q is not 8 hex digits", hash16)
	}
	key, err := base64.StdEncoding.Strict().DecodeString(key64)
	if err != nil || len(key) != 1+ed25519.PublicKeySize {
		return fail("key is not a type byte and %d bytes of standard base64", ed25519.PublicKeySize)
	}
	switch key[0] {
	case algEd25519:
		v, err := note.NewVerifier(vkey)
		if err != nil {
			return fail("%v", err)
		}
		return v, nil
	case algCosignatureV1:
		s, err := torchwood.NewCosignatureSigner(name, publicKey(key[1:]))
		if err != nil {
			return fail("%v", err)
		}
		if s.KeyHash() != uint32(hash) {
			return fail("key hash %s does not match the name and key", hash16)
		}
		return s.Verifier(), nil
	default:
		return fail("key type 0x%02x; want 0x04 (a tlog-cosignature) or 0x01 (Ed25519)", key[0])
	}
}

// publicKey is an Ed25519 public key that cannot sign: what
// torchwood.NewCosignatureSigner needs to make a cosignature verifier.
type publicKey ed25519.PublicKey

func (k publicKey) Public() crypto.PublicKey { return ed25519.PublicKey(k) }

func (publicKey) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("a witness's public key cannot sign")
}

// A Cosignature is one witness's valid signature on a checkpoint.
type Cosignature struct {
	// Witness is the witness's name, as in its key.
	Witness string `json:"witness"`
	// Time is when the witness signed (a tlog-cosignature's timestamp);
	// zero for a plain Ed25519 signature.
	Time time.Time `json:"time,omitzero"`
	// Line is the note's signature line, newline excluded.
	Line string `json:"line"`
}

// A QuorumError is a checkpoint whose cosignatures fall short of the
// quorum: which witnesses signed, which did not, and the note as served.
// errors.Is(err, [ErrQuorum]) holds.
type QuorumError struct {
	Checkpoint *Checkpoint
	Signed     []Cosignature
	// Missing names the witnesses with no valid cosignature.
	Missing []string
	Quorum  int
}

func (e *QuorumError) Error() string {
	return fmt.Sprintf("%v: checkpoint %s has valid cosignatures by %d of the witnesses (%s), the quorum is %d; missing: %s",
		ErrQuorum, e.Checkpoint, len(e.Signed), names(e.Signed), e.Quorum, strings.Join(e.Missing, ", "))
}

func (e *QuorumError) Unwrap() error { return ErrQuorum }

func names(cs []Cosignature) string {
	if len(cs) == 0 {
		return "none"
	}
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.Witness
	}
	return strings.Join(out, ", ")
}

// VerifyCosigned opens a checkpoint signed by the log key (as
// [OpenCheckpoint] does) and checks the cosignatures it carries against
// the given witnesses' keys: it returns the checkpoint and the valid
// cosignatures, one per witness, in the order of witnesses. A signature
// line by a witness that does not verify counts for nothing, and lines of
// keys not given are ignored. With fewer than quorum valid cosignatures it
// returns a [*QuorumError] (with the checkpoint and who signed).
func VerifyCosigned(msg []byte, logKey note.Verifier, witnesses []note.Verifier, quorum int) (*Checkpoint, []Cosignature, error) {
	if len(witnesses) > MaxWitnesses {
		return nil, nil, fmt.Errorf("%d witness keys, at most %d", len(witnesses), MaxWitnesses)
	}
	if quorum > len(witnesses) {
		return nil, nil, fmt.Errorf("a quorum of %d needs at least as many witness keys; %d given", quorum, len(witnesses))
	}
	c, err := OpenCheckpoint(msg, logKey)
	if err != nil {
		return nil, nil, err
	}
	text, lines := splitNote(msg)
	var signed []Cosignature
	var missing []string
	for _, w := range witnesses {
		cs, ok := cosignatureBy(text, lines, w)
		if !ok {
			missing = append(missing, w.Name())
			continue
		}
		signed = append(signed, cs)
	}
	if len(signed) < quorum {
		return c, signed, &QuorumError{Checkpoint: c, Signed: signed, Missing: missing, Quorum: quorum}
	}
	return c, signed, nil
}

// splitNote returns a signed note's text, final newline included, and its
// signature lines. A note that does not split yields no lines.
func splitNote(msg []byte) (text []byte, lines []string) {
	i := bytes.LastIndex(msg, []byte("\n\n"))
	if i < 0 || !bytes.HasSuffix(msg, []byte("\n")) {
		return msg, nil
	}
	return msg[:i+1], strings.Split(string(msg[i+2:len(msg)-1]), "\n")
}

// cosignatureBy finds a valid signature line by w on text.
func cosignatureBy(text []byte, lines []string, w note.Verifier) (Cosignature, bool) {
	for _, line := range lines {
		name, sig64, ok := strings.Cut(strings.TrimPrefix(line, "— "), " ")
		if !strings.HasPrefix(line, "— ") || !ok || name != w.Name() {
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(sig64)
		if err != nil || len(sig) < 4 || binary.BigEndian.Uint32(sig) != w.KeyHash() {
			continue
		}
		// Verified through note.Open, as any note reader would.
		one := append(bytes.Clone(text), "\n"+line+"\n"...)
		n, err := note.Open(one, note.VerifierList(w))
		if err != nil || len(n.Sigs) != 1 {
			continue
		}
		cs := Cosignature{Witness: w.Name(), Line: line}
		if _, isCosig := w.(*torchwood.CosignatureVerifier); isCosig {
			if ts, err := torchwood.CosignatureTimestamp(n.Sigs[0]); err == nil {
				cs.Time = time.Unix(ts, 0).UTC()
			}
		}
		return cs, true
	}
	return Cosignature{}, false
}

// CosignatureLines returns the signature lines of a witness's answer to
// add-checkpoint (c2sp.org/tlog-witness) that are valid signatures by w of
// the checkpoint note msg (signed by the log), each without its newline.
// The answer must be only signature lines, each ending in a newline.
func CosignatureLines(msg, answer []byte, w note.Verifier) ([]string, error) {
	if len(answer) == 0 || len(answer) > MaxCheckpointSize || !bytes.HasSuffix(answer, []byte("\n")) {
		return nil, fmt.Errorf("witness %s answered %d bytes, want signature lines each ending in a newline", w.Name(), len(answer))
	}
	text, _ := splitNote(msg)
	var valid []string
	for _, line := range strings.Split(string(answer[:len(answer)-1]), "\n") {
		if cs, ok := cosignatureBy(text, []string{line}, w); ok && !slices.Contains(valid, cs.Line) {
			valid = append(valid, cs.Line)
		}
	}
	if len(valid) == 0 {
		return nil, fmt.Errorf("witness %s answered no valid signature by its key %08x on the checkpoint", w.Name(), w.KeyHash())
	}
	return valid, nil
}
