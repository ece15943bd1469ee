package protocol

import "fmt"

// Jurisdiction returns the country whose hub is home to identifiers of type
// t, as an ISO 3166-1 alpha-2 code: "SE" for pnr, "NO" for fnr, "DK" for
// cpr, "FI" for hetu. Tokens of an identifier are made only under its home
// hub's key; a hub of another country relays its members' requests there
// (docs/peering.md). It returns "" for types that belong to no country
// (email, phone), which every hub tokenizes under its own key.
func (t IdentifierType) Jurisdiction() string {
	switch t {
	case TypePersonalNumber:
		return "SE"
	case TypeNorwegianNumber:
		return "NO"
	case TypeDanishNumber:
		return "DK"
	case TypeFinnishNumber:
		return "FI"
	}
	return ""
}

// CheckTokenRequest checks the form of a token request for a key of the
// given epoch without evaluating it: a known type, that epoch, and 1 to
// [MaxTokenBatch] byte strings that are group elements. A hub that relays
// a request to the identifier's home hub checks it so, since it holds no
// key to evaluate with. Errors wrap [ErrInvalidTokenRequest].
func CheckTokenRequest(req *TokenRequest, epoch uint32) error {
	if _, err := ParseIdentifierType(string(req.Type)); err != nil {
		return fmt.Errorf("%w: unknown type (want one of %s)", ErrInvalidTokenRequest, typeList())
	}
	if req.Epoch != epoch {
		return fmt.Errorf("%w: epoch %d, but the home hub of %s evaluates epoch %d; fetch the hub configuration again", ErrInvalidTokenRequest, req.Epoch, req.Type, epoch)
	}
	if _, err := decodeElements(req.Blinded); err != nil {
		return fmt.Errorf("%w: blinded %v", ErrInvalidTokenRequest, err)
	}
	return nil
}
