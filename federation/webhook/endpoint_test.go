package webhook

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sparr-dev/sparr/protocol"
)

func secret(t *testing.T) string {
	t.Helper()
	ws, err := protocol.GenerateWebhookSecret(nil)
	if err != nil {
		t.Fatal(err)
	}
	return ws.Encode()
}

// TestSigningSecrets: the newest secret signs, and the one it replaced
// until its overlap ends; never more than MaxSecrets, even from an
// endpoint stored with more; and a live secret the hub cannot use is an
// error that does not show it.
func TestSigningSecrets(t *testing.T) {
	at := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	newest, replaced := secret(t), secret(t)
	many := []EndpointSecret{{Secret: newest, CreatedAt: at}}
	for range 29 {
		many = append(many, EndpointSecret{Secret: secret(t), CreatedAt: at.Add(-time.Hour), ExpiresAt: at.Add(time.Hour)})
	}
	for _, tc := range []struct {
		name    string
		secrets []EndpointSecret
		want    []string
		bad     bool
	}{
		{name: "one", secrets: []EndpointSecret{{Secret: newest, CreatedAt: at}}, want: []string{newest}},
		{name: "in the overlap", secrets: []EndpointSecret{{Secret: newest, CreatedAt: at}, {Secret: replaced, CreatedAt: at.Add(-time.Hour), ExpiresAt: at.Add(time.Second)}},
			want: []string{newest, replaced}},
		{name: "past the overlap", secrets: []EndpointSecret{{Secret: newest, CreatedAt: at}, {Secret: replaced, CreatedAt: at.Add(-time.Hour), ExpiresAt: at}},
			want: []string{newest}},
		{name: "stored with 30", secrets: many, want: []string{newest, many[1].Secret}},
		{name: "a damaged one", secrets: []EndpointSecret{{Secret: "whsec_damaged", CreatedAt: at}}, bad: true},
		{name: "a damaged one in the overlap", secrets: []EndpointSecret{{Secret: newest, CreatedAt: at}, {Secret: "whsec_c2hvcnQ=", CreatedAt: at.Add(-time.Hour), ExpiresAt: at.Add(time.Hour)}}, bad: true},
		{name: "a damaged one past the overlap", secrets: []EndpointSecret{{Secret: newest, CreatedAt: at}, {Secret: "whsec_c2hvcnQ=", CreatedAt: at.Add(-time.Hour), ExpiresAt: at}},
			want: []string{newest}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := &Endpoint{Member: "bank-b", Secrets: tc.secrets}
			got, err := e.SigningSecrets(at)
			if tc.bad {
				if err == nil || !errors.Is(err, protocol.ErrWebhookKey) {
					t.Fatalf("got %d secrets, error %v; want an error wrapping ErrWebhookKey", len(got), err)
				}
				for _, s := range tc.secrets {
					if strings.Contains(err.Error(), strings.TrimPrefix(s.Secret, "whsec_")) {
						t.Errorf("got error %q, which shows a secret", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d secrets, want %d", len(got), len(tc.want))
			}
			for i, s := range got {
				if s.Encode() != tc.want[i] {
					t.Errorf("secret %d: got another secret than the newest %d live ones, in order", i, len(tc.want))
				}
			}
			if n := len(e.Live(at)); n != len(tc.want) {
				t.Errorf("got %d live secrets, want %d", n, len(tc.want))
			}
		})
	}
}

// TestAttemptUnsigned: a delivery the hub cannot sign is not sent: the
// receiver sees nothing, and the attempt says so apart from any answer.
func TestAttemptUnsigned(t *testing.T) {
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var requests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		requests.Add(1)
		w.WriteHeader(http.StatusAccepted)
	}))
	defer srv.Close()
	d := NewDispatcher(DispatcherConfig{Client: srv.Client(), HubKey: key})
	defer d.Close()
	for _, tc := range []struct {
		name string
		ep   *Endpoint
		key  ed25519.PrivateKey
	}{
		{name: "a damaged secret", ep: &Endpoint{Member: "bank-b", URL: srv.URL, Secrets: []EndpointSecret{{Secret: "whsec_damaged"}}}},
		{name: "a bad hub key", ep: &Endpoint{Member: "bank-b", URL: srv.URL, Secrets: []EndpointSecret{{Secret: secret(t)}}}, key: key[:10]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d.cfg.HubKey = key
			if tc.key != nil {
				d.cfg.HubKey = tc.key
			}
			a, cut, unsigned := d.attempt(tc.ep, Delivery{Seq: 1, WebhookID: "rec_bank-b", Body: []byte("body")})
			if unsigned == nil || cut || a.Status != 0 {
				t.Errorf("got attempt %+v, cut %t, unsigned %v; want it unsigned, with no answer", a, cut, unsigned)
			}
			if n := requests.Load(); n != 0 {
				t.Errorf("got %d requests at the receiver, want none", n)
			}
		})
	}
}
