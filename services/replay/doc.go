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
// Kafka and Redis, GOGC=400, batches of DefaultBatchSize, engines keeping DefaultCachePairs
// decoded) measured 173,000 records/s in the `scripts/bench.sh` run of 2026-11-24 07:01 UTC and
// 130,000-162,000 in other runs of that hour, on the otherwise idle 2-core development machine.
// The cost per record is what bounds it: 7.7-9.9 CPU-µs in this process (per million records,
// profiled: decode 1.3 s, engine 3.0, the projections' Go side 3.0 (rate limits 1.8, billing
// 1.2), reading 0.8, GC about 0.5) and 2.5-3.6 CPU-µs in Redis, 10-13 µs of the machine's 2 cores
// per record. 300,000 records/s would need at most 6.7 µs for everything: the engines alone
// (BenchmarkReplayEngineOnly, no Kafka, no Redis) ran at 323,000 records/s on one goroutine
// (3.1 CPU-µs per record, decode included), which leaves about 3.6 µs for reading and both
// projections, whose writes cost Redis 2.5 µs alone. That state is the live layout, and little of
// it is transient: one batch of the whole log per partition (a batch of 1,000,000) cost Redis 2.6
// µs per record against 3.2 for batches of 50,000 in the same hour. Reaching the target needs the
// projections' Go side and their Redis writes both cut by more than half (a more compact Redis
// layout for rate limits and the ledger, shared by the live path), not a faster reader or engine.
package replay
