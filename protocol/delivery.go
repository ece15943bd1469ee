package protocol

// Webhook deliveries. The hub POSTs each record to a member's endpoint as
// the body (the record's compact JWS) with these headers besides the
// Standard Webhooks ones ([HeaderWebhookID], [HeaderWebhookTimestamp],
// [HeaderWebhookSignature]):
//
//	Content-Type: application/secevent+jwt
//	Sparr-Sequence: 42
//	Sparr-Previous-Sequence: 37
//
// The hub numbers every event it applies; each member receives only the
// events it is entitled to and subscribed to, so its sequence numbers have
// gaps by design. Sparr-Previous-Sequence is the sequence number of the
// event delivered to this member before this one (0 for the first): a
// receiver whose last applied event is not that number has missed one, and
// fetches GET /v1/events?after=<its last> to fill the gap. A receiver
// answers 202 (any 2xx counts), or 400 with an RFC 8935 error when the
// delivery does not verify.
const (
	DeliveryContentType    = "application/secevent+jwt"
	HeaderSequence         = "Sparr-Sequence"
	HeaderPreviousSequence = "Sparr-Previous-Sequence"
)
