package protocol_test

import (
	"fmt"
	"testing"

	"github.com/sparr-dev/sparr/protocol"
)

func TestDeliveryID(t *testing.T) {
	for _, tc := range []struct{ jti, member, want string }{
		{"01J9Z3K4M5N6P7Q8R9S0T1V2W3", "bank-b", "01J9Z3K4M5N6P7Q8R9S0T1V2W3_bank-b"},
		{"verification-1", "bank-a", "verification-1_bank-a"},
	} {
		if got := protocol.DeliveryID(tc.jti, tc.member); got != tc.want {
			t.Errorf("DeliveryID(%q, %q): got %q, want %q", tc.jti, tc.member, got, tc.want)
		}
	}
	if protocol.DeliveryID("rec-1", "bank-a") == protocol.DeliveryID("rec-1", "bank-b") {
		t.Error("got one webhook-id for deliveries of a record to two members, want one each")
	}
}

// The webhook-id of the delivery of a record to bank-b.
func ExampleDeliveryID() {
	fmt.Println(protocol.DeliveryID("01J9Z3K4M5N6P7Q8R9S0T1V2W3", "bank-b"))
	// Output: 01J9Z3K4M5N6P7Q8R9S0T1V2W3_bank-b
}
