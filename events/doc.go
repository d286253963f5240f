// Package events is convmeter's wire contract: the input events upstream producers publish, the
// output events the window engine derives, the envelope that carries both, the JSON codec, the pair
// key and the Java-compatible partitioner.
//
// The package imports no Kafka, Redis or Watermill code (a test enforces it), so a downstream
// consumer can depend on it cheaply; its one third-party dependency is
// github.com/segmentio/encoding, a faster drop-in for encoding/json. Kafka plumbing shared by the
// services lives in the kafkax subpackage.
//
// # Envelope
//
// Every record on a convmeter topic is one JSON object:
//
//	{"v":1,"id":"…","type":"message.status.v1","key":"106540352242922/16505551234",
//	 "time":1750030073,"cause":{"partition":3,"offset":1289,"index":0},"data":{…}}
//
// Its fields:
//
//   - v: envelope schema version (EnvelopeVersion). A decoder rejects versions it does not know
//     (ErrKindVersion) and records without one (ErrKindInvalid).
//   - id: deterministic. Input ids hash the natural identity of the fact (for a status: wamid,
//     status and timestamp), so a retried webhook yields the same id. Derived ids are the id of the
//     input that caused them, "/", and the output's index within that input: equal input sequences
//     yield byte-identical outputs.
//   - type: the wire name, "<noun>.<verb>.v<N>". It is data, not a Go type name: renaming a Go type
//     never changes it, and the list of names is only appended to.
//   - key: the pair key (see PairKey) for pair events; "acct/<id>" for account events; empty for
//     clock ticks, which are written to one explicit partition each.
//   - time: event time in Unix seconds (Meta's resolution). Nothing in convmeter orders by arrival or
//     by the wall clock; stream time is the largest event time a partition has seen.
//   - cause: present on derived events only; the input partition, offset and index within that
//     input. It is what makes exactly-once effect possible without Kafka transactions.
//   - data: the payload, whose shape the type names.
//
// # Encoding
//
// Encode writes the envelope fields in the order above (cause only when set), then data with its
// fields in struct order, optional fields omitted when empty, map keys sorted and strings escaped as
// encoding/json escapes them. Times are written as integers. Equal events therefore encode to
// equal bytes; a decoded event re-encodes to bytes that decode to an equal event, and encoding
// those again gives the same bytes (FuzzDecode checks both).
//
// # Decoding
//
// Decode is strict where a mistake would be silent and tolerant where producers legitimately differ:
//
//   - The whole record must be one JSON object, at most MaxEventSize bytes (ErrKindMalformed,
//     ErrKindTooLarge).
//   - The type must be known (ErrKindUnknownType): an event nobody understands goes to the
//     dead-letter topic rather than being silently skipped.
//   - Every field must have its JSON type (ErrKindFieldType); the error names the field by its path,
//     such as "time", "cause.offset" or "data.pricing.billable".
//   - Every Unix time, in the envelope or in data, may be a number or a numeric string, because Meta
//     sends "1750030073" where older clients send 1750030073. null and "" read as zero.
//   - Unknown fields are ignored, in the envelope and inside data (forward compatibility). Envelope
//     field names match exactly; data field names match as encoding/json matches them (exact
//     first, then case-insensitively).
//   - The payload is validated (Validate): required identities, positive timestamps, known status,
//     kind and template category (ErrKindInvalid, naming every bad field).
//
// Every failure is a *DecodeError carrying its ErrorKind, the type and id when they were read, and
// a message naming the problem; errors.Is matches the kind's sentinel (ErrMalformed, …).
//
// # Versioning and compatibility
//
// A wire name never changes meaning. Adding an optional field to a payload is compatible and keeps
// the name; removing or retyping a field, or changing what a field means, is a new version
// (".v2") that is published beside the old one until every consumer has moved. Lists of wire names,
// error kinds, categories and reasons are only appended to.
//
// schemas/<wire name>.json describes each type (envelope and data) as JSON Schema draft 2020-12,
// for producers and consumers in other languages; tests keep every schema in step with the Go
// structs and validate every golden fixture against it. The schemas subpackage embeds them and
// validates records (schemas.Validate), for tests of the components that write events. testdata/golden/<wire name>/ holds encoded
// examples of every type and version; they are never edited, only added, and every build decodes
// them.
//
// # Kafka headers
//
// Records carry CloudEvents Kafka binding headers (ce_specversion, ce_id, ce_type, ce_source,
// ce_time, content-type) so consumers in any language can route without decoding the value.
package events
