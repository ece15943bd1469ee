package server_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/hubtest"
)

// TestNordicNumbersThroughTheAPI tokenizes, flags and checks a national
// number of each Nordic country through a real hub: two members that spell
// the same number differently get the same token, a flag placed by one
// reaches the other's check, and another number of the same type stays
// clear.
func TestNordicNumbersThroughTheAPI(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{})
	bankA := hub.AddMember(t, "bank-a", api.RoleFlag, api.RoleCheck)
	bankB := hub.AddMember(t, "bank-b", api.RoleCheck)
	tests := []struct {
		typ            protocol.IdentifierType
		spellingA      string
		spellingB      string
		bystander      string
		wantCanonicals string
	}{
		{protocol.TypePersonalNumber, "811218-9876", "198112189876", "19090527+1474", "198112189876"},
		{protocol.TypeNorwegianNumber, "130972 48022", "13097248022", "53097248016", "13097248022"},
		{protocol.TypeDanishNumber, "070761-4285", "0707614285", "0101004001", "0707614285"},
		{protocol.TypeFinnishNumber, "131052y308t", "131052Y308T", "131052-308T", "131052Y308T"},
	}
	for _, tt := range tests {
		t.Run(string(tt.typ), func(t *testing.T) {
			if c, err := protocol.Canonicalize(tt.typ, tt.spellingB, hub.Now()); err != nil || c != tt.wantCanonicals {
				t.Fatalf("canonical form: got %q, %v; want %q", c, err, tt.wantCanonicals)
			}
			toks := bankA.Tokenize(t, tt.typ, tt.spellingA, tt.bystander)
			same := bankB.Tokenize(t, tt.typ, tt.spellingB)[0]
			if toks[0] != same {
				t.Fatalf("got tokens %s and %s for one number, want equal", toks[0], same)
			}
			if toks[0].Type != tt.typ || toks[0] == toks[1] {
				t.Fatalf("got tokens %s, %s; want two distinct tokens of type %s", toks[0], toks[1], tt.typ)
			}
			placed := place(t, bankA, toks[0])
			res := check(t, bankB, "credit-application", same, toks[1])
			if r := res.Results[0]; r.Advice != api.AdviceVerify || r.Flag == nil || r.Flag.FlagID != placed.Flag.FlagID {
				t.Errorf("check of the flagged number: %+v, want advice verify with flag %s", r, placed.Flag.FlagID)
			}
			if r := res.Results[1]; r.Advice != api.AdviceNone || r.Flag != nil {
				t.Errorf("check of another number: %+v, want advice none", r)
			}
		})
	}
}

// TestNordicNumbersRefusedBeforeTheHub checks that numbers that cannot be
// tokens are refused by the SDK with their identifier error, and that
// nothing reaches the hub: its exchange log does not grow.
func TestNordicNumbersRefusedBeforeTheHub(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{})
	bank := hub.AddMember(t, "bank-a", api.RoleCheck)
	size, err := hub.Store.LogSize()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		typ   protocol.IdentifierType
		input string
		want  error
	}{
		{protocol.TypeNorwegianNumber, "13527248013", protocol.ErrInterimNumber}, // H-number
		{protocol.TypeNorwegianNumber, "13097248062", protocol.ErrCheckDigit},
		{protocol.TypeDanishNumber, "290200-3000", protocol.ErrInvalidDate},
		{protocol.TypeFinnishNumber, "131052-900W", protocol.ErrInterimNumber}, // temporary
		{protocol.TypeFinnishNumber, "131052-308U", protocol.ErrCheckDigit},
	}
	for _, tt := range tests {
		_, err := bank.Client().Tokenize(t.Context(), tt.typ, tt.input)
		var ie *protocol.IdentifierError
		if !errors.Is(err, tt.want) || !errors.As(err, &ie) || ie.Type != tt.typ {
			t.Errorf("%s %s: got %v, want an identifier error of that type wrapping %v", tt.typ, tt.input, err, tt.want)
		}
	}
	if n, _ := hub.Store.LogSize(); n != size {
		t.Errorf("the log grew from %d to %d entries, want nothing sent", size, n)
	}
}

// TestTokenRequestOfNordicTypes runs the token protocol by hand, as a
// member in another language would: it blinds a canonical number of each
// new type, posts the request, and finalizes the hub's answer into the
// token the SDK gets. A type the hub does not know is refused with a
// problem document.
func TestTokenRequestOfNordicTypes(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{})
	bank := hub.AddMember(t, "bank-a", api.RoleCheck)
	var cfg api.Configuration
	hub.Anonymous(t, http.MethodGet, "/.well-known/sparr-configuration", "", nil).JSON(t, &cfg)
	tc, err := protocol.NewTokenClient(cfg.Token)
	if err != nil {
		t.Fatal(err)
	}
	for typ, canonical := range map[protocol.IdentifierType]string{
		protocol.TypeNorwegianNumber: "13097248022",
		protocol.TypeDanishNumber:    "0707614285",
		protocol.TypeFinnishNumber:   "131052-308T",
	} {
		blinding, req, err := tc.Blind(typ, canonical)
		if err != nil {
			t.Fatal(err)
		}
		resp := bank.JSON(t, http.MethodPost, "/v1/tokens", req)
		mustStatus(t, resp, http.StatusOK)
		var tresp protocol.TokenResponse
		resp.JSON(t, &tresp)
		toks, err := tc.Finalize(blinding, &tresp)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		if sdk := bank.Tokenize(t, typ, canonical)[0]; toks[0] != sdk {
			t.Errorf("%s: got token %s by hand, %s from the SDK; want equal", typ, toks[0], sdk)
		}
	}
	_, req, err := tc.Blind(protocol.TypeNorwegianNumber, "13097248022")
	if err != nil {
		t.Fatal(err)
	}
	req.Type = "dnr"
	resp := bank.JSON(t, http.MethodPost, "/v1/tokens", req)
	if p := resp.Problem(t); resp.Status != http.StatusBadRequest || p.Type != protocol.ProblemInvalidTokenRequest.URI {
		t.Errorf("unknown type: got %d %+v, want 400 %s", resp.Status, p, protocol.ProblemInvalidTokenRequest.URI)
	}
}
