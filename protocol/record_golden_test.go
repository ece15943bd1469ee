package protocol_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/sparr-dev/sparr/protocol"
)

// jwks.json holds the hub's two test keys; records.json one record per event
// type and algorithm, signed with them, beside its decoded claim set.

type recordVector struct {
	Name   string          `json:"name"`
	JWS    string          `json:"jws"`
	Claims json.RawMessage `json:"claims"`
}

func TestGoldenJWKS(t *testing.T) {
	ed, p256 := hubKeys(t)
	data, err := json.Marshal(keySet(t, ed, p256))
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "jwks.json", marshalGolden(t, v))
}

func TestGoldenRecords(t *testing.T) {
	ed, p256 := hubKeys(t)
	var vectors []recordVector
	for _, key := range []*protocol.SigningKey{ed, p256} {
		for _, r := range sampleRecords(t) {
			signed, err := protocol.SignRecord(r, key)
			if err != nil {
				t.Fatal(err)
			}
			vectors = append(vectors, recordVector{
				Name:   r.Event.EventType().Short() + "/" + string(key.Algorithm()),
				JWS:    string(signed),
				Claims: payloadOf(t, signed),
			})
		}
	}
	checkGolden(t, "records.json", marshalGolden(t, vectors))
}

func payloadOf(t testing.TB, token []byte) []byte {
	t.Helper()
	parts := bytes.Split(token, []byte("."))
	p, err := base64.RawURLEncoding.DecodeString(string(parts[1]))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRecordVectorsVerify reads the vectors as another implementation
// would: every record verifies against jwks.json, and its payload is the
// claim set beside it.
func TestRecordVectorsVerify(t *testing.T) {
	var jwks json.RawMessage
	readGolden(t, "jwks.json", &jwks)
	keys, err := protocol.ParseKeySet(jwks)
	if err != nil {
		t.Fatal(err)
	}
	var vectors []recordVector
	readGolden(t, "records.json", &vectors)
	if got, want := len(vectors), 2*len(protocol.EventTypes()); got != want {
		t.Fatalf("got %d record vectors, want %d", got, want)
	}
	for _, v := range vectors {
		t.Run(v.Name, func(t *testing.T) {
			r, err := protocol.VerifyRecord([]byte(v.JWS), keys)
			if err != nil {
				t.Fatal(err)
			}
			var got, want any
			if err := json.Unmarshal(payloadOf(t, []byte(v.JWS)), &got); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(v.Claims, &want); err != nil {
				t.Fatal(err)
			}
			if !jsonEqual(got, want) {
				t.Errorf("payload %s, want claims %s", payloadOf(t, []byte(v.JWS)), v.Claims)
			}
			if r.Issuer != hubIssuer {
				t.Errorf("got iss %q, want %q", r.Issuer, hubIssuer)
			}
		})
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}
