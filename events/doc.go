// Package events is convmeter's wire contract: the input events upstream producers publish, the
// output events the window engine derives, the envelope that carries both, the JSON codec, the pair
// key and the Java-compatible partitioner.
//
// The package imports no Kafka, Redis or Watermill code, so a downstream consumer can depend on it
// cheaply. Kafka plumbing shared by the services lives in the kafkax subpackage.
//
// # Envelope
//
// Every record on a convmeter topic is one JSON object:
//
//		{"v":1,"id":"…","type":"message.status.v1","key":"106540352242922/16505551234",
//		 "time":1750030073,"cause":{"partition":3,"offset":1289,"index":0},"data":{…}}
//
//	  - v: envelope schema version (EnvelopeVersion). A decoder rejects versions it does not know.
//	  - id: deterministic. Input ids hash the natural identity of the fact (for a status: wamid,
//	    status and timestamp), so a retried webhook yields the same id. Derived ids are the id of the
//	    input that caused them, "/", and the output's index within that input: equal input sequences
//	    yield byte-identical outputs.
//	  - type: the wire name, "<noun>.<verb>.v<N>". It is data, not a Go type name: renaming a Go type
//	    never changes it, and the list of names is only appended to.
//	  - key: the pair key (see PairKey) for pair events; "acct/<id>" for account events; empty for
//	    clock ticks, which are written to one explicit partition each.
//	  - time: event time in Unix seconds (Meta's resolution). Nothing in convmeter orders by arrival or
//	    by the wall clock; stream time is the largest event time a partition has seen.
//	  - cause: present on derived events only; the input partition, offset and index within that
//	    input. It is what makes exactly-once effect possible without Kafka transactions.
//
// # Versioning and compatibility
//
// A wire name never changes meaning. Adding an optional field to a payload is compatible and keeps
// the name; removing or retyping a field, or changing what a field means, is a new version
// (".v2") that is published beside the old one until every consumer has moved. Decoders ignore
// unknown fields inside data (forward compatibility) but reject unknown event types: an event nobody
// understands goes to the dead-letter topic rather than being silently skipped. Golden fixtures in
// testdata/ are never edited; every released type and version keeps one, decoded by every build.
//
// # Kafka headers
//
// Records carry CloudEvents Kafka binding headers (ce_specversion, ce_id, ce_type, ce_source,
// ce_time, content-type) so consumers in any language can route without decoding the value.
package events
