package server_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
	"github.com/sparr-dev/sparr/server/hubtest"
)

func init() {
	openapi3filter.RegisterBodyDecoder(protocol.DeliveryContentType, openapi3filter.FileBodyDecoder)
}

// A delivery is one request the hub made to a member's endpoint.
type delivery struct {
	header http.Header
	body   []byte
}

// TestOpenAPIDescribesDeliveries holds real deliveries — the verification
// record, a flag's record, and one signed with two secrets after a rotation
// — to the webhook the document describes: its headers, their schemas and
// the body's media type and schema.
func TestOpenAPIDescribesDeliveries(t *testing.T) {
	hub := hubtest.Start(t, hubtest.Options{})
	bank := hub.AddMember(t, "bank-a", api.RoleFlag, api.RoleCheck)
	doc := openAPI(t)
	item := doc.Webhooks["record"]
	if item == nil || item.Post == nil {
		t.Fatalf("got no webhooks.record.post, want the delivery described")
	}
	route := &routers.Route{Spec: doc, Path: "record", PathItem: item, Method: http.MethodPost, Operation: item.Post}
	documented := map[string]bool{}
	for _, p := range item.Post.Parameters {
		if p.Value.In == "header" {
			documented[http.CanonicalHeaderKey(p.Value.Name)] = true
		}
	}

	got := make(chan delivery, 16)
	recv := hub.NewReceiver(t, bank)
	recv.Behave(func(_ int, w http.ResponseWriter, r *http.Request) bool {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return true
		}
		got <- delivery{r.Header.Clone(), body}
		w.WriteHeader(http.StatusAccepted)
		return true
	})
	recv.Register(t)
	next := func(what string) delivery {
		t.Helper()
		select {
		case d := <-got:
			return d
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: got no delivery within 10s", what)
			return delivery{}
		}
	}
	place := func() {
		t.Helper()
		tok := bank.Tokenize(t, protocol.TypeEmail, "kund-"+time.Now().Format("150405.000000000")+"@bank.example")[0]
		if resp := bank.Submit(t, "/v1/flags", protocol.PlaceFlag{Subject: tok, Kind: protocol.FlagKindStandard, Consent: bank.Consent(tok)}); resp.Status != http.StatusCreated {
			t.Fatalf("place a flag: got status %d, want 201: %s", resp.Status, resp.Body)
		}
	}

	verification := next("verification")
	place()
	flag := next("flag placed")
	if resp := bank.Do(t, http.MethodPost, "/v1/members/self/endpoint/secret", "", nil); resp.Status != http.StatusOK {
		t.Fatalf("rotate the secret: got status %d, want 200: %s", resp.Status, resp.Body)
	}
	place()
	rotated := next("flag placed after a rotation")

	for _, tc := range []struct {
		name string
		d    delivery
		macs int // v1 signatures: one per secret that signs
	}{
		{"verification", verification, 1},
		{"flag placed", flag, 1},
		{"after a rotation", rotated, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := &http.Request{Method: http.MethodPost, URL: &url.URL{Path: "/sparr/events"}, Header: tc.d.header, Body: io.NopCloser(bytes.NewReader(tc.d.body))}
			input := &openapi3filter.RequestValidationInput{Request: req, Route: route, Options: &openapi3filter.Options{MultiError: true}}
			if err := openapi3filter.ValidateRequest(context.Background(), input); err != nil {
				t.Errorf("got %v, want the delivery the document describes", err)
			}
			for name := range tc.d.header {
				if (strings.HasPrefix(name, "Webhook-") || strings.HasPrefix(name, "Sparr-")) && !documented[name] {
					t.Errorf("got header %s sent but not documented, want every webhook and Sparr header described", name)
				}
			}
			var v1, v1a int
			for _, sig := range strings.Fields(tc.d.header.Get(protocol.HeaderWebhookSignature)) {
				switch {
				case strings.HasPrefix(sig, "v1,"):
					v1++
				case strings.HasPrefix(sig, "v1a,"):
					v1a++
				}
			}
			if v1 != tc.macs || v1a != 1 {
				t.Errorf("got %d v1 and %d v1a signatures, want %d and 1", v1, v1a, tc.macs)
			}
		})
	}
}

// TestOpenAPIDeliveryAnswers: what the document says of a receiver's
// answers names each class the hub tells apart.
func TestOpenAPIDeliveryAnswers(t *testing.T) {
	op := openAPI(t).Webhooks["record"].Post
	for _, code := range []string{"2XX", "3XX", "408", "410", "429", "4XX", "5XX"} {
		if op.Responses.Value(code) == nil {
			t.Errorf("got no %s answer of the webhook, want what the hub does with it described", code)
		}
	}
	for _, code := range []string{"408", "429", "5XX"} {
		if r := op.Responses.Value(code); r != nil && r.Value.Headers["Retry-After"] == nil {
			t.Errorf("got a %s answer without Retry-After, want it: the hub honours it", code)
		}
	}
}
