package protocol_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/protocol"
)

// Record and bearer benchmarks, each beside the raw signature primitive on
// the same bytes, so the cost of JOSE encoding and claim checks shows as a
// ratio measured in the same run:
//
//	go test ./protocol -run '^$' -bench 'Record|Bearer' -count 5

func BenchmarkRecord(b *testing.B) {
	ed, p256 := hubKeys(b)
	keys := keySet(b, ed, p256)
	r := sampleRecords(b)[0]
	for _, k := range []*protocol.SigningKey{ed, p256} {
		alg := string(k.Algorithm())
		signed, err := protocol.SignRecord(r, k)
		if err != nil {
			b.Fatal(err)
		}
		// The signing input of the same record: what the raw primitive signs.
		input := signed[:lastDot(signed)]
		b.Run("Sign/"+alg, func(b *testing.B) {
			for b.Loop() {
				if _, err := protocol.SignRecord(r, k); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("Verify/"+alg, func(b *testing.B) {
			for b.Loop() {
				if _, err := protocol.VerifyRecord(signed, keys); err != nil {
					b.Fatal(err)
				}
			}
		})
		sig, verify := rawPrimitive(b, k, input)
		b.Run("BaselineSign/"+alg, func(b *testing.B) {
			for b.Loop() {
				sig()
			}
		})
		b.Run("BaselineVerify/"+alg, func(b *testing.B) {
			for b.Loop() {
				if !verify() {
					b.Fatal("baseline signature does not verify")
				}
			}
		})
	}
}

func lastDot(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] == '.' {
			return i
		}
	}
	return -1
}

// rawPrimitive returns sign and verify functions of the bare algorithm
// (Ed25519, or ECDSA P-256 over SHA-256) on input. sign calls the very
// crypto.Signer that k wraps, so both sides of the ratio sign the same way:
// for the ES256 test keys that is deterministic (RFC 6979), as the golden
// vectors need; a hub's own ES256 key signs with randomness, at about the
// same cost.
func rawPrimitive(b *testing.B, k *protocol.SigningKey, input []byte) (sign func(), verify func() bool) {
	signer := k.Signer()
	switch pub := k.Public().CryptoPublicKey().(type) {
	case ed25519.PublicKey:
		sigBytes, err := signer.Sign(rand.Reader, input, crypto.Hash(0))
		if err != nil {
			b.Fatal(err)
		}
		return func() {
				if _, err := signer.Sign(rand.Reader, input, crypto.Hash(0)); err != nil {
					b.Fatal(err)
				}
			},
			func() bool { return ed25519.Verify(pub, input, sigBytes) }
	case *ecdsa.PublicKey:
		digest := sha256.Sum256(input)
		sigBytes, err := signer.Sign(rand.Reader, digest[:], crypto.SHA256)
		if err != nil {
			b.Fatal(err)
		}
		return func() {
				d := sha256.Sum256(input)
				if _, err := signer.Sign(rand.Reader, d[:], crypto.SHA256); err != nil {
					b.Fatal(err)
				}
			}, func() bool {
				d := sha256.Sum256(input)
				return ecdsa.VerifyASN1(pub, d[:], sigBytes)
			}
	}
	b.Fatalf("unexpected key type")
	return nil, nil
}

func BenchmarkBearer(b *testing.B) {
	a, _, keys := memberKeys(b)
	now := time.Now()
	tok, err := protocol.NewBearer(a, "bank-a", hubIssuer, now, time.Minute)
	if err != nil {
		b.Fatal(err)
	}
	opts := protocol.BearerOptions{Audience: hubIssuer, Now: now}
	b.Run("Verify", func(b *testing.B) {
		for b.Loop() {
			if _, err := protocol.VerifyBearer(ctx, tok, keys, opts); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("BaselineVerify", func(b *testing.B) {
		input := []byte(tok[:lastDot([]byte(tok))])
		_, verify := rawPrimitive(b, a, input)
		for b.Loop() {
			if !verify() {
				b.Fatal("baseline signature does not verify")
			}
		}
	})
}
