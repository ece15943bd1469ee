// Package consent decides whether a consumer's consent to a protection flag
// is acceptable under the hub's policy, and keeps track of that consent for
// as long as the flag lives.
//
// # Why consent matters
//
// A protection flag is personal data about a consumer, processed on the
// legal basis of the consumer's own consent (GDPR Art. 6(1)(a)). So a flag
// exists only with consent: the member that the consumer asked for
// protection authenticates the consumer strongly, records the consent, and
// attaches it, as a [protocol.Consent] with fields after ISO/IEC TS 27560,
// to its signed place-flag submission. Package protocol checks that every
// field is present and well-formed; [Policy.Validate] checks that the values
// are ones the hub accepts: the member itself is the controller, the purpose
// and legal basis are the ones the hub operates under, the consumer used a
// strong e-identification, consent was collected recently, and it lasts at
// least as long as the flag it supports.
//
// Consent can be withdrawn at any time, as easily as it was given: lifting a
// flag withdraws its consent ([Record.Withdraw]), after which the hub deletes
// the consent record and tells every member to delete what it holds. Consent
// also ends when it lapses or its flag expires ([Record.Expire]).
//
// # Example
//
// A consent the default policy accepts, collected a minute before the flag
// is placed, for a flag of one year:
//
//	{
//	  "id": "019aa5f0-8c00-7000-8000-00000000c001",
//	  "subject": "pnr.1.fbw0t6cT…",
//	  "controller": "bank-a",
//	  "purpose": "identity-fraud-protection",
//	  "legal_basis": "gdpr-art-6-1-a",
//	  "collection": {"method": "mobile-app", "at": 1795255140},
//	  "notice": "https://bank-a.example/privacy/sparr-v3",
//	  "expires_at": 1826791200,
//	  "evidence": {"authentication_method": "bankid", "assurance_level": "loa3", "reference": "a3d5c7e1-auth"}
//	}
//
// A refusal is an [*Error] naming the field at fault and saying what to do;
// errors.Is(err, [ErrInvalid]) holds for all of them. No error ever repeats
// the consent's subject token or evidence reference.
package consent
