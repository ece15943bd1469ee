package protocol_test

import (
	"encoding/hex"
	"testing"
	"time"

	"github.com/cloudflare/circl/oprf"

	"github.com/sparr-dev/sparr/protocol"
)

// tokens.json: the test OPRF key and the token of each identifier under it.
// Another implementation derives the key from key_seed and key_info with
// RFC 9497 DeriveKeyPair in mode POPRF (or takes private_key as is),
// canonicalizes each input at reference_date, and must get canonical and
// token; running the oblivious protocol against that key must give the same
// token.

type tokenFile struct {
	Suite         string        `json:"suite"`
	Mode          string        `json:"mode"`
	KeySeed       string        `json:"key_seed"`
	KeyInfo       string        `json:"key_info"`
	PrivateKey    string        `json:"private_key"`
	PublicKey     string        `json:"public_key"`
	Epoch         uint32        `json:"epoch"`
	InfoFormat    string        `json:"info_format"`
	ReferenceDate string        `json:"reference_date"`
	Tokens        []tokenVector `json:"tokens"`
}

type tokenVector struct {
	Type      protocol.IdentifierType `json:"type"`
	Input     string                  `json:"input"`
	Canonical string                  `json:"canonical"`
	Info      string                  `json:"info"`
	Token     string                  `json:"token"`
}

var tokenInputs = []struct {
	typ   protocol.IdentifierType
	input string
}{
	{protocol.TypePersonalNumber, "19090527+1474"},
	{protocol.TypePersonalNumber, "090527+1474"},
	{protocol.TypePersonalNumber, "190905271474"},
	{protocol.TypePersonalNumber, "000229-2399"},
	{protocol.TypePersonalNumber, "7302889931"},
	{protocol.TypePersonalNumber, "20210791-9967"},
	{protocol.TypeEmail, "anna.svensson@example.se"},
	{protocol.TypeEmail, "  Anna.Svensson@EXAMPLE.se "},
	{protocol.TypeEmail, "kund+spärr@bücher.example"},
	{protocol.TypePhone, "070-123 45 67"},
	{protocol.TypePhone, "+46 70 123 45 67"},
	{protocol.TypePhone, "+1 650 253 0000"},
	{protocol.TypeNorwegianNumber, "13097248022"},
	{protocol.TypeDanishNumber, "070761-4285"},
	{protocol.TypeFinnishNumber, "131052-308T"},
}

const tokenReferenceDate = "2026-11-21"

func TestGoldenTokens(t *testing.T) {
	k := testTokenKey(t)
	seed := seed32("sparr test vectors: OPRF key")
	priv, err := oprf.DeriveKey(oprf.SuiteRistretto255, oprf.PartialObliviousMode, seed, []byte("sparr/v1/key/1"))
	if err != nil {
		t.Fatal(err)
	}
	privBytes, _ := priv.MarshalBinary()
	ref, _ := time.Parse(time.DateOnly, tokenReferenceDate)
	file := tokenFile{
		Suite: protocol.TokenSuite, Mode: "POPRF",
		KeySeed: hex.EncodeToString(seed), KeyInfo: "sparr/v1/key/1",
		PrivateKey: protocol.Base64URL(privBytes).String(), PublicKey: k.Public().Key.String(),
		Epoch: 1, InfoFormat: "sparr/v1/<type>/<epoch>", ReferenceDate: tokenReferenceDate,
	}
	for _, in := range tokenInputs {
		canonical, err := protocol.Canonicalize(in.typ, in.input, ref)
		if err != nil {
			t.Fatalf("%s %q: %v", in.typ, in.input, err)
		}
		tok, err := k.Token(in.typ, canonical)
		if err != nil {
			t.Fatal(err)
		}
		file.Tokens = append(file.Tokens, tokenVector{
			Type: in.typ, Input: in.input, Canonical: canonical,
			Info: string(protocol.TokenInfo(in.typ, 1)), Token: tok.String(),
		})
	}
	checkGolden(t, "tokens.json", marshalGolden(t, file))
}

// TestTokenVectors checks tokens.json as another implementation would,
// through the oblivious protocol.
func TestTokenVectors(t *testing.T) {
	var file tokenFile
	readGolden(t, "tokens.json", &file)
	seed, err := hex.DecodeString(file.KeySeed)
	if err != nil {
		t.Fatal(err)
	}
	k, err := protocol.DeriveTokenKey(file.Epoch, seed)
	if err != nil {
		t.Fatal(err)
	}
	if got := k.Public().Key.String(); got != file.PublicKey {
		t.Fatalf("derived public key %s, want %s", got, file.PublicKey)
	}
	c := tokenClient(t, k)
	ref, _ := time.Parse(time.DateOnly, file.ReferenceDate)
	for _, v := range file.Tokens {
		canonical, err := protocol.Canonicalize(v.Type, v.Input, ref)
		if err != nil || canonical != v.Canonical {
			t.Errorf("%s %q: canonical %q, %v; want %q", v.Type, v.Input, canonical, err, v.Canonical)
			continue
		}
		got := tokenize(t, c, k, v.Type, canonical)[0]
		if got.String() != v.Token {
			t.Errorf("%s %q: token %s, want %s", v.Type, v.Input, got, v.Token)
		}
	}
}
