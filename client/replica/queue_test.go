package replica

import (
	"fmt"
	"reflect"
	"testing"
	"unsafe"

	"github.com/sparr-dev/sparr/protocol"
	"github.com/sparr-dev/sparr/protocol/api"
)

// TestQueueCodes: every purpose and identifier type the protocol knows
// has a code without a lookup; other strings get codes of their own as
// they come, up to the last code, past which they read as "", which the
// hub refuses; and a queued check is small and holds no pointer.
func TestQueueCodes(t *testing.T) {
	var q checkQueue
	var known []string
	known = append(known, api.Purposes()...)
	for _, typ := range protocol.IdentifierTypes() {
		known = append(known, string(typ))
	}
	for _, s := range known {
		c, ok := knownCode(s)
		if !ok {
			t.Errorf("%q has no code of its own: add it to knownNames and knownCode", s)
			continue
		}
		if got := q.name(c); got != s {
			t.Errorf("code %d of %q names %q", c, s, got)
		}
	}
	if len(knownNames) != len(known) {
		t.Errorf("got %d known names, want the %d purposes and identifier types", len(knownNames), len(known))
	}
	for i := range 300 {
		s := fmt.Sprintf("purpose-%d", i)
		c := q.code(s)
		want := s
		if len(knownNames)+i >= int(overflow) {
			want = ""
		}
		if got := q.name(c); got != want {
			t.Fatalf("%q: code %d names %q, want %q", s, c, got, want)
		}
		if again := q.code(s); again != c {
			t.Fatalf("%q: code %d, then %d", s, c, again)
		}
	}
	tok := protocol.Token{Type: protocol.TypePhone, Epoch: 7, Value: [protocol.TokenSize]byte{1, 2, 3}}
	c := q.check(api.PurposePayment, tok, 42)
	if got := q.token(&c); got != tok || q.name(c.purpose) != api.PurposePayment || c.at != 42 {
		t.Errorf("a check of %v: got %v, %q at %d", tok, got, q.name(c.purpose), c.at)
	}
	if n := unsafe.Sizeof(localCheck{}); n != 80 {
		t.Errorf("a queued check takes %d bytes, want 80", n)
	}
	lc := reflect.TypeFor[localCheck]()
	for i := range lc.NumField() {
		switch f := lc.Field(i); f.Type.Kind() {
		case reflect.String, reflect.Pointer, reflect.Slice, reflect.Map, reflect.Interface, reflect.Func, reflect.Chan, reflect.UnsafePointer:
			t.Errorf("a queued check's %s is a %s: the queue would hold pointers", f.Name, f.Type.Kind())
		}
	}
}
