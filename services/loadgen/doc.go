// Package loadgen is convmeter's realistic traffic model and the load generator around it.
//
// Model (New(Config)) simulates WhatsApp Business traffic: several WABAs in different time zones
// and currencies, many phone numbers and users in several markets (including +1 809, priced as
// Rest of Latin America, and Indonesia, authentication-international for the first WABA), users
// writing in (some from click-to-WhatsApp ads, which open free-entry-point windows), businesses
// replying free-form and sending templates of every category, users answering templates,
// statuses sent, delivered and read carrying Meta's per-message pricing fields, failed messages
// (131047 for free-form outside the window, 131026 otherwise), statuses that arrive out of order
// (sent after delivered, read before delivered, read without delivered) and webhooks Meta
// delivers twice. It is pure and deterministic: a Config (with its Seed) gives the same items in
// the same order. Next yields them in arrival order, the order convmeter would receive them; each
// event keeps its own event time.
//
// Webhook renders webhook items as a Meta webhook body, the bytes the ingest endpoint receives.
// Play paces a model against the wall clock at a speed-up (a simulated day in a minute at 1440).
// `convmeter loadgen` drives a real deployment with it (Kafka through the producer SDK, or signed
// webhooks to the ingest endpoint); `convmeter dev --simulate` feeds its embedded pipeline.
package loadgen
