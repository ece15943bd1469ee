package api_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
)

const goodPeer = `{"id":"hub-no","jurisdiction":"NO","url":"https://sparr.example.no","member":"hub-se","key_file":"hub-no.jwk",
"token":{"suite":"ristretto255-SHA512","epoch":1,"public_key":"AQID"},"policy":{"identifier_types":["fnr"]}}`

func TestPeerRequestValidate(t *testing.T) {
	var good api.PeerRequest
	if err := json.Unmarshal([]byte(goodPeer), &good); err != nil {
		t.Fatal(err)
	}
	if err := good.Validate(); err != nil {
		t.Fatalf("got %v for a complete request, want nil", err)
	}
	for name, c := range map[string]struct {
		change func(*api.PeerRequest)
		field  string
	}{
		"no id":           {func(r *api.PeerRequest) { r.ID = "" }, "id"},
		"jurisdiction":    {func(r *api.PeerRequest) { r.Jurisdiction = "No" }, "jurisdiction"},
		"url":             {func(r *api.PeerRequest) { r.URL = "ftp://x" }, "url"},
		"member":          {func(r *api.PeerRequest) { r.Member = "Hub SE" }, "member"},
		"key file path":   {func(r *api.PeerRequest) { r.KeyFile = "../keys/operator.jwk" }, "key_file"},
		"hidden key file": {func(r *api.PeerRequest) { r.KeyFile = ".hub-no.jwk" }, "key_file"},
		"no token epoch":  {func(r *api.PeerRequest) { r.Token.Epoch = 0 }, "token"},
		"unknown event":   {func(r *api.PeerRequest) { r.Policy.EventTypes = []protocol.EventType{"urn:x"} }, "policy.event_types"},
		"unknown id type": {func(r *api.PeerRequest) { r.Policy.IdentifierTypes = []protocol.IdentifierType{"ssn"} }, "policy.identifier_types"},
	} {
		r := good
		c.change(&r)
		err := r.Validate()
		if !errors.Is(err, api.ErrInvalidPeer) || !strings.Contains(err.Error(), ": "+c.field+": ") {
			t.Errorf("%s: got %v, want an invalid peer about %s", name, err, c.field)
		}
	}
}

func FuzzPeerRequest(f *testing.F) {
	f.Add([]byte(goodPeer))
	f.Add([]byte(`{"id":"a","key_file":"../x"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var r api.PeerRequest
		if json.Unmarshal(data, &r) != nil {
			return
		}
		if err := r.Validate(); err != nil {
			if !errors.Is(err, api.ErrInvalidPeer) {
				t.Fatalf("got %v, want an error wrapping ErrInvalidPeer", err)
			}
			return
		}
		if strings.ContainsAny(r.KeyFile, `/\`) || strings.HasPrefix(r.KeyFile, ".") || len(r.Jurisdiction) != 2 {
			t.Fatalf("accepted %+v", r)
		}
	})
}
