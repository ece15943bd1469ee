package protocol_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/cloudflare/circl/oprf"

	"github.com/sparr-dev/sparr/protocol"
)

// The hub evaluates token requests from the network, and a member finalizes
// the hub's answers: both sides take bytes they cannot trust.

// FuzzEvaluate feeds the hub arbitrary POST /v1/tokens bodies. Evaluate
// must refuse anything but a batch of 1 to 100 canonical, non-identity
// ristretto255 elements for its own epoch and a known type, always with
// ErrInvalidTokenRequest (which the hub answers as a client error), and
// must answer an accepted batch with one element per input and a proof.
func FuzzEvaluate(f *testing.F) {
	key := testTokenKey(f)
	c := tokenClient(f, key)
	for _, n := range []int{1, 3} {
		values := make([]string, n)
		for i := range values {
			values[i] = "190905271474"
		}
		_, req, err := c.Blind(protocol.TypePersonalNumber, values...)
		if err != nil {
			f.Fatal(err)
		}
		body, err := json.Marshal(req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body)
	}
	f.Add([]byte(`{"type":"pnr","epoch":1,"blinded":[]}`))
	f.Add([]byte(`{"type":"pnr","epoch":2,"blinded":["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"]}`))
	f.Add([]byte(`{"type":"email","epoch":1,"blinded":["AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"]}`))
	f.Add([]byte(`{"type":"iban","epoch":1,"blinded":["_________________________________________w"]}`))
	g := oprf.SuiteRistretto255.Group()
	f.Fuzz(func(t *testing.T, body []byte) {
		var req protocol.TokenRequest
		if json.Unmarshal(body, &req) != nil {
			return
		}
		resp, err := key.Evaluate(&req)
		if err != nil {
			if !errors.Is(err, protocol.ErrInvalidTokenRequest) {
				t.Fatalf("Evaluate: got %v, want an error wrapping ErrInvalidTokenRequest", err)
			}
			return
		}
		if _, err := protocol.ParseIdentifierType(string(req.Type)); err != nil || req.Epoch != key.Epoch() {
			t.Fatalf("evaluated a batch of type %q epoch %d; the key is for known types and epoch %d", req.Type, req.Epoch, key.Epoch())
		}
		if n := len(req.Blinded); n < 1 || n > protocol.MaxTokenBatch {
			t.Fatalf("evaluated a batch of %d, want 1 to %d", n, protocol.MaxTokenBatch)
		}
		for i, b := range req.Blinded {
			e := g.NewElement()
			if err := e.UnmarshalBinary(b); err != nil || e.IsIdentity() {
				t.Fatalf("evaluated blinded[%d] = %x, which is no non-identity element (%v)", i, []byte(b), err)
			}
			if again, _ := e.MarshalBinaryCompress(); !bytes.Equal(again, b) {
				t.Fatalf("evaluated blinded[%d] = %x, not the canonical encoding %x", i, []byte(b), again)
			}
		}
		if resp.Type != req.Type || resp.Epoch != req.Epoch || len(resp.Evaluated) != len(req.Blinded) || len(resp.Proof) != 64 {
			t.Fatalf("answer %s epoch %d with %d elements and a %d-byte proof, for %s epoch %d with %d elements",
				resp.Type, resp.Epoch, len(resp.Evaluated), len(resp.Proof), req.Type, req.Epoch, len(req.Blinded))
		}
		for i, e := range resp.Evaluated {
			if len(e) != 32 {
				t.Fatalf("evaluated[%d] is %d bytes, want 32", i, len(e))
			}
		}
	})
}

// FuzzFinalize answers a fresh blinding with arbitrary evaluations: either
// the fuzzer's bytes as they are, or (relative) the hub's genuine answer
// with the fuzzer's bytes XORed into its elements and proof, so that the
// search starts from, and stays near, an answer that verifies. Finalize
// must fail with ErrInvalidTokenResponse or ErrTokenProof, or return
// exactly the true tokens: no answer it accepts may change a token. The
// genuine answer itself must be accepted.
func FuzzFinalize(f *testing.F) {
	key := testTokenKey(f)
	c := tokenClient(f, key)
	inputs := []string{"190905271474", "198112189876"}
	want := make([]protocol.Token, len(inputs))
	for i, v := range inputs {
		want[i] = testToken(f, protocol.TypePersonalNumber, v)
	}
	f.Add("pnr", uint32(1), []byte{}, []byte{}, true)
	f.Add("pnr", uint32(1), []byte{1}, []byte{}, true)
	f.Add("pnr", uint32(1), []byte{}, make([]byte, 63), true)
	f.Add("pnr", uint32(2), []byte{}, []byte{}, true)
	f.Add("email", uint32(1), []byte{}, []byte{}, true)
	f.Add("pnr", uint32(1), make([]byte, 64), make([]byte, 64), false)
	f.Add("pnr", uint32(1), bytes.Repeat([]byte{0xff}, 96), make([]byte, 64), false)
	// One blinding and its genuine answer serve every input: Finalize only
	// reads them, and the fuzzer's inputs then replay exactly.
	b, req, err := c.Blind(protocol.TypePersonalNumber, inputs...)
	if err != nil {
		f.Fatal(err)
	}
	genuine, err := key.Evaluate(req)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, typ string, epoch uint32, evaluated, proof []byte, relative bool) {
		resp := &protocol.TokenResponse{Type: protocol.IdentifierType(typ), Epoch: epoch}
		if relative {
			resp.Evaluated = make([]protocol.Base64URL, len(genuine.Evaluated))
			for i, e := range genuine.Evaluated {
				resp.Evaluated[i] = xorInto(e, evaluated[min(len(evaluated), i*len(e)):])
			}
			resp.Proof = xorInto(genuine.Proof, proof)
		} else {
			for len(evaluated) > 0 {
				n := min(len(evaluated), 32)
				resp.Evaluated = append(resp.Evaluated, evaluated[:n])
				evaluated = evaluated[n:]
			}
			resp.Proof = proof
		}
		untouched := relative && typ == string(genuine.Type) && epoch == genuine.Epoch &&
			allZero(evaluated[:min(len(evaluated), 32*len(inputs))]) && allZero(proof[:min(len(proof), 64)])
		toks, err := c.Finalize(b, resp)
		if err != nil && untouched {
			t.Fatalf("Finalize refused the hub's genuine answer: %v", err)
		}
		if err != nil {
			if !errors.Is(err, protocol.ErrInvalidTokenResponse) && !errors.Is(err, protocol.ErrTokenProof) {
				t.Fatalf("Finalize: got %v, want ErrInvalidTokenResponse or ErrTokenProof", err)
			}
			return
		}
		if len(toks) != len(want) {
			t.Fatalf("Finalize: got %d tokens, want %d", len(toks), len(want))
		}
		for i := range toks {
			if toks[i] != want[i] {
				t.Fatalf("Finalize accepted an answer that changes token [%d]: got %s, want %s", i, toks[i], want[i])
			}
		}
	})
}

// xorInto returns a copy of b with the bytes of mask XORed into its first
// bytes; mask beyond len(b) is ignored.
func xorInto(b, mask []byte) []byte {
	out := bytes.Clone(b)
	for i := range min(len(out), len(mask)) {
		out[i] ^= mask[i]
	}
	return out
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}
