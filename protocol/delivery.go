package protocol

// Webhook deliveries. The hub POSTs each record to a member's endpoint as
// the body (the record's compact JWS) with these headers besides the
// Standard Webhooks ones ([HeaderWebhookID], [HeaderWebhookTimestamp],
// [HeaderWebhookSignature]):
//
//	Content-Type: application/secevent+jwt
//	webhook-id: <jti>_<member>
//	Sparr-Sequence: 42
//	Sparr-Previous-Sequence: 37
//
// The webhook-id is [DeliveryID] of the record's jti and the recipient
// member's id. The hub numbers every event it applies; each member
// receives only the events it is entitled to and subscribed to, so its
// sequence numbers have gaps by design. Sparr-Previous-Sequence is the
// sequence number of the event delivered to this member before this one
// (0 for the first). Neither sequence header is covered by the webhook
// signature: a previous sequence number other than the receiver's last
// applied one is a hint that a delivery went missing, never proof that
// none did. The feed is the authority: a receiver that must miss nothing
// takes a delivery as the signal to read GET /v1/events?after=<its last>,
// and reads it now and then regardless, rather than relying on the
// headers. A receiver answers 202 (any 2xx counts), or 400 with an RFC
// 8935 error when the delivery does not verify.
const (
	DeliveryContentType    = "application/secevent+jwt"
	HeaderSequence         = "Sparr-Sequence"
	HeaderPreviousSequence = "Sparr-Previous-Sequence"
)

// DeliveryID returns the webhook-id of the delivery of the record with
// jti to member: "<jti>_<member>". It is the same on every retry of that
// delivery, so a receiver can drop repeats by it. It names the recipient,
// and the signature covers it: a receiver checks that it is
// DeliveryID(jti, its own member id), so that a delivery to another member,
// whose hub signature (v1a) verifies just the same, is not taken as its
// own.
func DeliveryID(jti, member string) string { return jti + "_" + member }
