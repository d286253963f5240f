// Package replay rebuilds the projections from the log and compares them with the live ones
// (architecture rule 7: replay is a product feature).
//
// Run reads every partition of the message-events topic directly (one leader connection per
// partition, large fetches) from its first offset up to the high-water mark captured at the
// start, runs each record through the aggregator's pure Processor (one window engine per
// partition, dead letters made exactly as the aggregator makes them) and applies the outputs in
// batches, with their causes, to the billing and rate-limit projections of a fresh Namespace (a
// Redis key prefix, laid out as `convmeter project` lays out the live one). Nothing is written to
// Kafka. --from/--to restrict the replay to input events of an event-time range (account events
// always apply).
//
// Compare diffs the rebuilt namespace against the live one: the settled totals of every
// WABA-month, every settled ledger line field by field, the reconciliation counts, and the
// rate-limit state entry by entry (which that projection keeps independent of batch sizes). It
// also lists both sides' high-water marks: if the live projections moved on during the replay,
// the differences they explain are expected. Report prints as tables or JSON.
//
// Promote switches the live namespace to the rebuilt one by renaming keys (see Promote for why,
// and for its preconditions).
//
// Partition is the in-memory live path of one partition, shared with the offline audit. Run
// pipelines it: a full batch is applied in the background while the engine fills the next.
//
// # Performance
//
// scripts/bench-replay.sh (BenchmarkReplayKafka: 1,000,000 loadgen events, 4 partitions, local
// Kafka and Redis, GOGC=400, batches of DefaultBatchSize) measured 138,000-151,000 records/s on
// the otherwise idle 2-core development machine (2026-11-24, 05:40 UTC). The cost per record is
// what bounds it: about 10 CPU-µs in this process (decode 1.9, engine 3.8, the projections' Go
// side 2.8, reading and GC most of the rest) and 2.5-2.8 CPU-µs in Redis, 12-13 µs of the
// machine's 2 cores per record, so 300,000 records/s would need half of that: a cheaper engine
// and cheaper projection writes (or more cores), not a faster reader. The engines alone
// (BenchmarkReplayEngineOnly, no Kafka, no Redis) ran at 178,000-194,000 records/s on one
// goroutine (5.1-5.6 CPU-µs per record, decode included).
package replay
