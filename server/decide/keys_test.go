package decide_test

import (
	"encoding/json"
	"testing"

	"github.com/sparr-dev/sparr/protocol"
)

// keySetJSON is a JWK Set of a new key, for a member document.
func keySetJSON(t *testing.T) json.RawMessage {
	t.Helper()
	k, err := protocol.GenerateSigningKey(protocol.EdDSA, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(map[string]any{"keys": []*protocol.PublicKey{k.Public()}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}
