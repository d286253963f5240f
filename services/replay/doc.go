// Package replay rebuilds the projections from the log and compares them with the live ones
// (architecture rule 7: replay is a product feature).
//
// Run reads every partition of the message-events topic directly (one leader connection per
// partition, fetches decoded ahead) from its first offset up to the high-water mark captured at the
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
// Rate limits are read a chunk of keys at a time from both sides and only the differences are
// kept (the key names are held); ledger lines of both sides are merged in index order as they
// are read, only the unmatched ones held (a line whose time changed waits for its other side and
// shows as changed): comparing a 1M-record replay took about 3 s and 260-300 MB here, whether
// its 230k-245k lines lie in one WABA-month or five.
//
// Promote switches the live namespace to the rebuilt one by renaming keys (see Promote for why,
// and for its preconditions).
//
// An interrupted replay can be resumed. Rebuild (what `convmeter replay` runs) records in the
// namespace, before the first batch, a Manifest: the log's offsets captured at the start, the time
// range, the lateness and the rate cards' digest; it marks it done at the end. Resumed, it reads
// the same offsets again (the engines' state is not stored) and applies nothing twice: the
// outputs every projection has applied are dropped before batching, and each projection skips
// the rest of what it applied (its high-water mark, as after any crash). A resume with other
// settings is refused, and so is a log whose retention deleted records the replay had read.
// List finds the replays beside a live namespace (a registry set under the live prefix); Drop
// deletes one. TestReplayResumeAfterKill kills a replay process with SIGKILL and checks that the
// resumed namespace equals an uninterrupted replay's.
//
// Partition is the in-memory live path of one partition, shared with the offline audit. Run
// pipelines it: a full batch is applied in the background while the engine fills the next.
//
// # Performance
//
// scripts/bench-replay.sh (BenchmarkReplayKafka: 1,000,000 loadgen events, 4 partitions, local
// Kafka and Redis with AOF, GOGC=400, batches of DefaultBatchSize, engines keeping
// DefaultCachePairs decoded) measured 218,000 records/s in the `scripts/bench.sh` run of
// 2026-11-24 09:27 UTC, on the otherwise idle 2-core development machine (173,000 at 07:01; in
// alternating runs at 09:14, 185,000-187,000 against 142,000-154,000 for commit c206a40). The
// cost per record is what bounds it, and the run saturated both cores: 5.7 CPU-µs in this
// process (per million records, profiled: engine 1.6-1.8 s, decode 0.9-1.0, rate limits' Go side
// 1.2, billing's 0.8, reading 0.7, GC about 0.8 with sweeping), 2.3 in Redis, 0.9 in the AOF
// rewrites Redis forks as the append-only file grows (a replay roughly doubles the data set, so
// a production Redis forks one too) and 0.1 in the broker: 9.0 µs of the machine's 2 cores per
// record. 300,000 records/s allows 6.7 µs for everything. Redis and the broker take 3.3 of them on
// this log, whose 5 hours of event time all lie within the rate limits' undo window, so the
// written state is final, not churn (one batch of the whole log per partition cost Redis as much
// per record as batches of 50,000); the engines alone (BenchmarkReplayEngineOnly, no Kafka, no
// Redis) take 2.5 of the process's 5.7. Reaching the target needs both a more compact Redis
// layout for rate limits and the ledger (shared with the live path, which replay must reproduce
// for Compare and Promote): Redis and its rewrites halved would leave 5.0 µs for the process,
// and the process at least another eighth cheaper; the process alone cannot get there.
package replay
