package console

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"filippo.io/torchwood"
	"golang.org/x/mod/sumdb/note"

	"github.com/sparr-dev/sparr/protocol"
)

// ErrQuorum is returned, inside a [*QuorumError], by [OpenCheckpoint] when
// fewer of the given witnesses cosigned a checkpoint than the quorum asks.
var ErrQuorum = errors.New("checkpoint not cosigned by a quorum of witnesses")

// A QuorumError says how many witnesses cosigned a checkpoint, and how
// many were wanted; Checkpoint is the checkpoint, verified with the log key.
type QuorumError struct {
	Checkpoint *Checkpoint
	Got, Want  int
}

func (e *QuorumError) Error() string {
	return fmt.Sprintf("%v: %d of the %d witnesses given cosigned it, want %d", ErrQuorum, e.Got, len(e.Checkpoint.Witnesses), e.Want)
}

// Unwrap returns [ErrQuorum].
func (e *QuorumError) Unwrap() error { return ErrQuorum }

// A Checkpoint is a checkpoint verified with the log key, with every
// signature line of its note: the log's, the cosignatures of the witnesses
// given (verified or not), and any other, shown by name as unknown.
type Checkpoint struct {
	*protocol.Checkpoint
	// Signatures are the note's signature lines, in order.
	Signatures []Signature
	// Witnesses are the witnesses given, by name, and whether each
	// cosigned the checkpoint.
	Witnesses []Witness
}

// Cosigned returns how many of the witnesses given cosigned the
// checkpoint.
func (c *Checkpoint) Cosigned() int {
	n := 0
	for _, w := range c.Witnesses {
		if w.Cosigned {
			n++
		}
	}
	return n
}

// A Signature is one signature line of a checkpoint's note.
type Signature struct {
	Name    string
	KeyHash uint32
	// Kind is "log" (the log key's), "witness" (a witness given) or
	// "unknown" (a key not given: shown, not verified).
	Kind     string
	Verified bool
	// Time is when a witness cosigned (C2SP tlog-cosignature), if it did.
	Time time.Time
}

// A Witness is a witness given, and whether it cosigned a checkpoint.
type Witness struct {
	Name     string
	Cosigned bool
	Time     time.Time
}

// ParseWitnessKey parses a witness's public key, as
// [protocol.NewWitnessVerifier] does: a C2SP signed-note verifier key of a
// tlog-cosignature key or a plain Ed25519 note key.
func ParseWitnessKey(vkey string) (note.Verifier, error) {
	return protocol.NewWitnessVerifier(strings.TrimSpace(vkey))
}

// OpenCheckpoint verifies a signed checkpoint with the log key (as
// [protocol.OpenCheckpoint], whose [*protocol.CheckpointError] it returns
// when that fails), then checks the cosignature of every witness given,
// and lists every signature line. When fewer than quorum witnesses
// cosigned it, it returns the checkpoint and a [*QuorumError].
func OpenCheckpoint(msg []byte, logKey note.Verifier, witnesses []note.Verifier, quorum int) (*Checkpoint, error) {
	cp, err := protocol.OpenCheckpoint(msg, logKey)
	if err != nil {
		return nil, err
	}
	out := &Checkpoint{Checkpoint: cp}
	verified := map[string]Signature{} // by name and key hash
	id := func(name string, hash uint32) string { return name + "+" + strconv.FormatUint(uint64(hash), 16) }
	verified[id(logKey.Name(), logKey.KeyHash())] = Signature{Kind: "log", Verified: true}
	for _, w := range witnesses {
		wt := Witness{Name: w.Name()}
		n, err := note.Open(msg, note.VerifierList(w))
		if err == nil && len(n.Sigs) > 0 {
			wt.Cosigned = true
			if ts, err := torchwood.CosignatureTimestamp(n.Sigs[0]); err == nil && n.Sigs[0].Base64 != "" {
				if _, isCosig := w.(*torchwood.CosignatureVerifier); isCosig {
					wt.Time = time.Unix(ts, 0).UTC()
				}
			}
		}
		out.Witnesses = append(out.Witnesses, wt)
		verified[id(w.Name(), w.KeyHash())] = Signature{Kind: "witness", Verified: wt.Cosigned, Time: wt.Time}
	}
	for _, line := range signatureLines(msg) {
		s, ok := verified[id(line.Name, line.KeyHash)]
		if !ok {
			s = Signature{Kind: "unknown"}
		}
		s.Name, s.KeyHash = line.Name, line.KeyHash
		out.Signatures = append(out.Signatures, s)
	}
	if got := out.Cosigned(); got < quorum {
		return out, &QuorumError{Checkpoint: out, Got: got, Want: quorum}
	}
	return out, nil
}

// signatureLines reads the signature lines of a signed note ("— <name>
// <base64>", C2SP signed-note) generically, whoever signed them; lines
// that are not signatures are left out.
func signatureLines(msg []byte) []Signature {
	i := bytes.LastIndex(msg, []byte("\n\n"))
	if i < 0 {
		return nil
	}
	var out []Signature
	for _, line := range strings.Split(string(msg[i+2:]), "\n") {
		rest, ok := strings.CutPrefix(line, "— ")
		if !ok {
			continue
		}
		name, b64, ok := strings.Cut(rest, " ")
		sig, err := base64.StdEncoding.DecodeString(b64)
		if !ok || err != nil || len(sig) < 4 {
			continue
		}
		out = append(out, Signature{Name: name, KeyHash: uint32(sig[0])<<24 | uint32(sig[1])<<16 | uint32(sig[2])<<8 | uint32(sig[3])})
	}
	return out
}
