package members

import (
	"net/http"
	"regexp"
	"testing"
	"time"
)

// FuzzLifetime checks that whatever cache headers a key server sends, a
// key set is used for MinAge to MaxAge.
func FuzzLifetime(f *testing.F) {
	f.Add("max-age=60", "", "", "")
	f.Add(`no-cache="Set-Cookie, max-age=9", max-age=300`, "", "", "")
	f.Add("max-age=", "", "", "x")
	f.Add("Max-Age=99999999999999999999", "", "", "1")
	f.Add("", "Fri, 20 Nov 2026 09:02:00 GMT", "Fri, 20 Nov 2026 09:00:00 GMT", "60")
	f.Add("", "0", "", "")
	f.Add("s-maxage=60, private", "Thu, 01 Jan 1970 00:00:00 GMT", "garbage", "-1")
	k := NewKeys(KeysConfig{Directory: DirectoryFunc(nil), Now: func() time.Time { return time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC) }})
	f.Fuzz(func(t *testing.T, cacheControl, expires, date, age string) {
		h := http.Header{}
		for name, value := range map[string]string{"Cache-Control": cacheControl, "Expires": expires, "Date": date, "Age": age} {
			if value != "" {
				h.Set(name, value)
			}
		}
		if got := k.lifetime(h); got < k.minAge || got > k.maxAge {
			t.Errorf("lifetime(%v) = %s, want %s to %s", h, got, k.minAge, k.maxAge)
		}
	})
}

// keySetDescriptions are the forms of what describeKeySet says, numbers
// aside: nothing else, so no byte of the body it describes.
var keySetDescriptions = regexp.MustCompile(`^(an empty body|a body that is not JSON|JSON that is not a JWK Set \(an object with a "keys" array\)|` +
	`a JWK Set with no keys|a JWK Set of [0-9]+ keys; it may hold at most [0-9]+|` +
	`a JWK Set whose key [0-9]+ \(of [0-9]+\) is not a usable public signing key|a JWK Set with two keys of one kid|a JWK Set the hub cannot use)$`)

// FuzzDescribeKeySet checks that describeKeySet says what a body is in
// one of its own forms, never quoting it.
func FuzzDescribeKeySet(f *testing.F) {
	for _, s := range []string{"", " ", "SECRET", "<html>", `{"keys":[]}`, `{"keys":"x"}`, `["x"]`, `{"keys":[1]}`, `{"keys":null}`,
		`{"keys":[{"kty":"OKP","crv":"Ed25519","kid":"k","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"},{"kty":"OKP","crv":"Ed25519","kid":"k","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if got := describeKeySet(body); !keySetDescriptions.MatchString(got) {
			t.Errorf("describeKeySet(%q) = %q, want one of its own forms", body, got)
		}
	})
}
