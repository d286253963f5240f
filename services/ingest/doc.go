// Package ingest is `convmeter ingest`: Meta's WhatsApp Business webhooks in, normalised input
// events out, on the message-events topic.
//
// # Request flow
//
//  1. GET <path> is Meta's subscription handshake: hub.mode=subscribe with the configured
//     hub.verify_token is answered with hub.challenge; anything else gets 403.
//  2. POST <path>: a body over Config.MaxBodyBytes gets 413. The raw body is checked against
//     X-Hub-Signature-256 (HMAC-SHA256 with the app secret, constant-time; every configured secret
//     is tried, for rotations): missing or wrong gets 401 and nothing is published.
//  3. Normalize (pure) turns the body into events. A body that is not a JSON webhook envelope gets
//     400 with the reason. Below the envelope, an element that cannot become an event (a status
//     without id, an unknown status, a timestamp that is not a number, ...) is rejected alone and
//     becomes an events.DeadLetter (reason, error kind, original bytes, path in the request); the
//     rest is published. Fields we do not use are counted and skipped.
//  4. The request goes through a Watermill router (an in-process queue that does not serialise
//     deliveries; the HTTP handler waits for the ack). Middleware, outermost first: outcome (hands
//     the result back to the waiting HTTP handler), CorrelationID (X-Request-Id, or a new id; it
//     travels as the correlation_id header of every record), Retry (transient Kafka errors, with
//     backoff), PoisonQueue (permanent errors: the whole body becomes one dead letter). The
//     handler publishes all events of the request with one wmkafka Publish (one kafka-go
//     WriteMessages call, acks=all), then the dead letters likewise.
//  5. 200 only after Kafka acknowledged every record of the request; on a Kafka failure after the
//     retries, 503, so Meta retries. Event ids are deterministic (events.New: wamid + status +
//     timestamp for statuses, wamid for inbound messages), so a retried or duplicated webhook writes
//     records with the same ids and downstream consumers take them once.
//
// # What becomes what
//
//   - field "messages", value.messages[] → message.inbound.v1 (every type; context.id,
//     referral, errors codes, system type and new wa_id; the BSUID from from_user_id, user_id or
//     the matching contact's user_id). The wa_id is "from", else the contact's.
//   - field "messages", value.statuses[] → message.status.v1 (phone_number_id from
//     value.metadata; recipient_id, recipient_user_id, recipient_type, recipient_participant_id;
//     pricing with billable kept absent when absent, type or pricing_type, category normalised;
//     conversation id, expiration, origin.type normalised; errors codes and titles).
//   - value.errors with no messages or statuses: skipped ("value_errors").
//   - phone_number_quality_update (max_daily_conversations_per_business, else current_limit) and
//     business_capability_update (max_daily_conversations_per_business, else
//     max_daily_conversation_per_phone; -1 is TIER_UNLIMITED, numbers map to TIER_*) →
//     account.limit.v1 with Scope "waba" and ID = entry.id: the webhook names the WABA, and
//     account configuration resolves its numbers and portfolio. Time = entry.time (required).
//   - account_update VOLUME_BASED_PRICING_TIER_UPDATE → account.volume_tier.v1 (other account_update
//     events are skipped and counted).
//   - template_category_update → template.category.v1, time = entry.time (required).
//   - Account events are broadcast: one copy (same id) to every partition of message-events, so
//     every partition's engine knows them.
//
// Numbers and ids are accepted as JSON strings or numbers; unknown fields are ignored, among them
// identity_key_hash, recipient_identity_key_hash, biz_opaque_callback_data, message bodies and
// media (the events carry no place for them, and billing needs none).
//
// Normalize decodes a well-formed body in one pass (envelope to statuses). Only when something
// in it does not decode or validate does it decode again element by element, so that exactly the
// bad elements are rejected with their own bytes; good input never pays for that.
//
// # Measuring
//
// scripts/bench-ingest.sh runs loadgen (this directory's loadgen command): signed requests of 100
// statuses, concurrent, over loopback, against an in-process server publishing to real Kafka; it
// prints events/s accepted (200 after the Kafka ack), p50/p99 latency, the kafka-go writer's batch
// figures and the process's CPU seconds. BenchmarkNormalize100 measures the pure part alone.
//
// Dead letters go to the dead-letter topic keyed "ingest/<waba id>", with Topic "webhook",
// Partition and Offset -1 and headers path, field, waba_id. Their id is derived from the element's
// bytes and reason, so Meta's retries write the same dead letter again. An original over 4 MiB
// is cut to its first 4 MiB (headers truncated_from and sha256 say so), so the record fits the
// dead-letter topic.
//
// The Handler also serves GET /metrics (Prometheus: the Stats counters, skipped changes by
// reason, request latency, Go and process collectors) and GET /healthz.
//
// Logs never carry phone numbers: they name the WABA, the path in the request and the reason.
package ingest
