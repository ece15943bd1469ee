// Package protocol is Spärr's wire format: identifiers and their canonical
// forms, identity tokens, signed records, member submissions, bearer tokens,
// webhook signatures and problem types. The hub, the member SDK and the
// regulator's tools all speak through it, and it imports no other package of
// this module. Everything below is also what a member written in another
// language implements; docs/protocol.md walks through it with examples, and
// testdata/ holds golden vectors to test against.
//
// # Identifiers
//
// Raw identifiers never leave a member. Before tokenization each is brought
// to one canonical form ([Canonicalize]):
//
//   - pnr: a Swedish personnummer or samordningsnummer, 12 digits
//     YYYYMMDDNNNC. Ten-digit forms take their century from the separator
//     ("-" or none: under 100 years old in the reference year; "+": 100 or
//     older). The date must exist (samordningsnummer: day + 60), must not be
//     after the reference date, the serial must not be 000, and C is the Luhn
//     digit of YYMMDDNNN. Interim numbers (a letter in the serial) are
//     recognised but never tokenized.
//   - email: trimmed; the domain IDNA-mapped to ASCII and lower-cased; the
//     local part NFC-normalized and lower-cased, dots and +tags kept.
//   - phone: E.164, parsing national numbers as Swedish.
//   - iban, seaccount, bankgiro, plusgiro, swish: the payee types; see
//     [PayeeTypes] and docs/protocol.md.
//   - fnr: a Norwegian fødselsnummer or D-number (day + 40), the 11 digits
//     DDMMYYIIIKK as issued. K1 and K2 are the mod-11 control digits; from
//     2032 K1 may leave a remainder of 0 to 3, and the number carries no
//     century. H-numbers (month + 40) are recognised but never tokenized;
//     Tenor's synthetic numbers (month + 80) are.
//   - cpr: a Danish CPR number, the 10 digits DDMMYYSSSS; the century
//     follows from the year and the first serial digit. The modulus-11
//     check does not refuse a number (it is not kept since 2007).
//   - hetu: a Finnish personal identity code DDMMYYCZZZQ in upper case,
//     with any of the century signs + - Y X W V U A B C D E F and the
//     mod-31 control character. Temporary codes (individual number
//     900–999) are recognised but never tokenized.
//
// # Tokens
//
// A token is the RFC 9497 POPRF output, suite ristretto255-SHA512, for the
// canonical identifier's UTF-8 bytes, with public info
// "sparr/v1/<type>/<epoch>" and the hub's key of that epoch. Its text form is
//
//	<type>.<epoch>.<base64url of the 64-byte output, no padding>
//	pnr.1.fbw0t6cTAYuEKwjw_A31K9BYUwtWsZdCbhDfl5zZUaMca0Jt7jwye1XmPGdyRzHacZ6RB1P1KQJyI1VABr9_kQ
//
// A member blinds up to 100 identifiers of one type and POSTs them to
// /v1/tokens; the hub answers with the evaluated elements and one batched
// DLEQ proof, which the member checks against the hub's published key
// before finalizing. Elements and proof travel as unpadded base64url of
// RFC 9497's own serialization:
//
//	→ {"type":"pnr","epoch":1,"blinded":["<32 bytes>", …]}
//	← {"type":"pnr","epoch":1,"evaluated":["<32 bytes>", …],"proof":"<64 bytes: c ‖ s>"}
//
// # Signed objects
//
// Records, submissions and bearer tokens are compact JWS (RFC 7515) signed
// with EdDSA (Ed25519) or ES256, each with "kid" and an explicit "typ"
// (RFC 8725, section 3.11) so that none can pass for another. "crit" and
// "b64" are refused, and so is a header that names any member twice. A
// verifier reads only the protected header before the signature is
// checked, and decodes the payload only after; errors are
// [*VerificationError]s naming the sentinel ([ErrMalformed],
// [ErrUnknownKey], [ErrBadSignature], [ErrWrongType], [ErrMissingClaim],
// [ErrInvalidClaim], [ErrExpired], [ErrNotYetValid]) with the evidence.
// Times are integer seconds since 1970 ([NumericDate]).
//
// # Records
//
// The hub signs every change as a Security Event Token (RFC 8417),
// "typ":"secevent+jwt", with exactly one event:
//
//	{"iss":"https://hub.example","iat":1795255200,
//	 "jti":"019aa5f0-8c00-7000-8000-000000000001",   // UUIDv7
//	 "txn":"<the submission's jti>",
//	 "sub_id":{"format":"opaque","id":"pnr.1.fbw0…"},  // RFC 9493; or "aliases"
//	 "events":{"urn:sparr:event:flag-placed":{
//	   "flag_id":"…","kind":"standard","origin":"bank-a",
//	   "expires_at":1826791200,"consent_ref":"…"}}}
//
// The event types and their payloads are [FlagPlaced], [FlagExtended],
// [FlagThawed], [FlagLifted], [FlagExpired], [FlagExpiring],
// [SuspicionReported],
// [SuspicionRetracted], [SuspicionExpired], [SubjectErased] and
// [Verification] (the only event without sub_id). Unknown claims are
// ignored, so the hub can add fields; an unknown event type is refused.
//
// A flag's optional "reason" is a code, never free text, which would invite
// personal data into records every member keeps: a [PlaceReason]
// ("consumer-request", "identity-theft", "lost-id-document", "other") in
// flag-placed, a [LiftReason] ("consumer-request", "deceased", "other") in
// flag-lifted. The member puts it in its submission and the hub copies it
// into the record; any other value is refused in both.
//
// # Submissions
//
// Every write is a member-signed JWS, "typ":"sparr-submission+jwt", whose
// protected header also carries "iss", the member id (RFC 7519, section 5.3),
// so the hub finds the key before reading the payload:
//
//	header {"alg":"EdDSA","kid":"…","typ":"sparr-submission+jwt","iss":"bank-a"}
//	claims {"iss":"bank-a","aud":"https://hub.example","iat":1795255200,
//	        "jti":"<idempotency key>","action":"flag-place","request":{…}}
//
// The actions and their requests are [PlaceFlag] (with the consumer's
// [Consent]), [ExtendFlag], [ThawFlag], [LiftFlag], [ReportSuspicion] and
// [RetractSuspicion]. Unknown fields are refused. "iat" may be at most
// [DefaultSkew] ahead of the hub and [DefaultSubmissionMaxAge] behind it.
//
// # Bearer tokens
//
// Every request but discovery carries "Authorization: Bearer <jwt>", a JWT
// the member signs itself: header "typ":"sparr-bearer+jwt" with "kid" and
// "iss"; claims iss = sub = member id, aud = the hub's issuer, iat, and exp at
// most five minutes later ([MaxBearerLifetime]). The verifier tolerates
// [DefaultSkew] of clock difference unless its [BearerOptions] say
// otherwise: [NoSkew] for none, at most [MaxSkew].
//
// # Webhooks
//
// Deliveries are signed per Standard Webhooks: headers webhook-id,
// webhook-timestamp and webhook-signature over "id.timestamp.body", with
// "v1,<base64 HMAC-SHA256>" under the member's whsec_ secret and
// "v1a,<base64 Ed25519>" under the hub's webhook key, several entries
// allowed, ±5 minutes of tolerance ([WebhookSigner], [WebhookVerifier]).
//
// # The exchange log
//
// Every action the hub takes is one line of its exchange log ([LogEntry]),
// holding who, what, when, the outcome and a salted commitment to the
// details, never an identifier or a token. The lines are the leaves of an
// RFC 6962 Merkle tree, whose size and root the hub signs as C2SP
// checkpoints ([Checkpoint]) with a key of its own. [LogAuditor] is the
// regulator's check: consistency with the last checkpoint kept, every new
// entry, and the recomputed root, each failure a typed error with the
// evidence.
//
// Witnesses (C2SP tlog-witness) cosign checkpoints: the hub appends their
// C2SP tlog-cosignature lines to the checkpoint it serves, after its own:
//
//	hubtest.example/log
//	42
//	Xm3C…=
//
//	— hubtest.example/log tGmT…
//	— w1.example 1+wyZwAAAABnP2lV…
//
// [NewWitnessVerifier] reads a witness's key, and [VerifyCosigned] checks
// a checkpoint against the log key and a quorum of witness keys, a
// shortfall being a [*QuorumError] that names who signed.
//
// # Problems
//
// Every error answer is an RFC 9457 problem document
// (application/problem+json) whose "type" is one of [ProblemTypes], a URN of
// the form urn:sparr:problem:<slug> that never changes meaning.
package protocol
