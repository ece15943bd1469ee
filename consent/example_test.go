package consent_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/sparr-dev/sparr/consent"
	"github.com/sparr-dev/sparr/protocol"
)

func ExamplePolicy_Validate() {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	flagExpiry := now.AddDate(1, 0, 0)
	subject, _ := protocol.ParseToken("pnr.1.fbw0t6cTAYuEKwjw_A31K9BYUwtWsZdCbhDfl5zZUaMca0Jt7jwye1XmPGdyRzHacZ6RB1P1KQJyI1VABr9_kQ")
	c := &protocol.Consent{
		ID:         "019aa5f0-8c00-7000-8000-00000000c001",
		Subject:    subject,
		Controller: "bank-a",
		Purpose:    "identity-fraud-protection",
		LegalBasis: "gdpr-art-6-1-a",
		Collection: protocol.ConsentCollection{Method: "mobile-app", At: protocol.NewNumericDate(now.Add(-26 * time.Hour))},
		Notice:     "https://bank-a.example/privacy/sparr-v3",
		ExpiresAt:  protocol.NewNumericDate(flagExpiry),
		Evidence:   protocol.ConsentEvidence{AuthenticationMethod: "bankid", Reference: "a3d5c7e1-auth"},
	}
	policy := consent.DefaultPolicy()

	err := policy.Validate(c, "bank-a", flagExpiry, now)
	var cerr *consent.Error
	if errors.As(err, &cerr) {
		fmt.Println(cerr.Field)
		fmt.Println(cerr.Detail)
	}

	// The consumer confirms again in the bank's app.
	c.Collection.At = protocol.NewNumericDate(now.Add(-time.Minute))
	fmt.Println(policy.Validate(c, "bank-a", flagExpiry, now))

	// Output:
	// collection.at
	// collected 26h ago; consent must be collected within 24h before the flag is placed — ask the consumer again
	// <nil>
}
