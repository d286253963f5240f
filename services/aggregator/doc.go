// Package aggregator is the Kafka shell around the window engine: it consumes the message-events
// topic in a consumer group, runs one window.Engine per assigned partition, and writes the
// derived events to the same partition of the conversation-events topic (the two topics are
// co-partitioned; Run refuses to start when their partition counts, or the dead-letter topic's,
// differ).
//
// # Exactly-once effect without Kafka transactions
//
// kafka-go has no transactions, so the aggregator gets exactly-once effect from positions
// (architecture rule 3):
//
//   - every output carries its cause: input partition, input offset, index among that input's
//     outputs. Dead letters carry one too (index 0), and their ids derive from the input position;
//   - a partition starts (process start, or assignment after a rebalance) by loading its snapshot,
//     taken at input offset S, and reading the last record of its output partition and of its
//     dead-letter partition: the last causes E already written;
//   - it reprocesses from S. The engine is deterministic, so it derives the same events with the
//     same causes; those whose cause is not after E are suppressed, the rest are written;
//   - outputs are written in cause order, in chunks that are each one record batch the aggregator
//     builds itself (kafkax.RecordBatch: at most three quarters of the topic's max.message.bytes
//     before compression), sent to the known partition in one produce request with acks=all
//     (kafkax.BatchWriter), one synchronous write at a time, with a single attempt. A
//     chunk is appended whole or not at all, so the partition's last record really is the last
//     cause written with nothing missing before it; any write error restarts the partition from
//     its snapshot, which is the same recovery as a crash, retriable broker errors (a leader that
//     moved) included. (Retrying inside the writer could append a chunk twice when an
//     acknowledgement is lost.)
//   - a partition is a pipeline of depth 1: while batch N's chunks are written, batch N+1 is
//     fetched, applied to the engine and encoded, and its write starts only once N's is
//     acknowledged. A failed write ends the session before anything later is written, and a
//     session never ends (restart, revocation, stop) with a write in flight, so the restarted
//     session's reading of the log's last cause sees everything this one will ever write;
//   - a snapshot waits for the write in flight, so it is taken at a batch boundary after every
//     output before it is acknowledged, and records the next input offset; input offsets are
//     committed only once their outputs are acknowledged (and after the snapshot when one is
//     due). The committed offset is for lag tooling: restores start from the snapshot, never
//     from the commit. A partition commits after each batch's acknowledgement, while the next
//     batch's write is in flight, and waits for that write when caught up with its log's end.
//
// So a kill at any point (mid-batch, mid-write, mid-snapshot, before the commit) loses nothing and
// doubles nothing: the restarted partition re-derives what the snapshot does not cover and writes
// only what the log does not hold. One assumption: a partition has one writer at a time. The
// consumer group's generations give that (kafka-go waits for every partition loop of a generation
// to return before it joins the next), except for an instance that stalls past its session timeout
// and then writes; the session timeout must exceed the longest pause.
//
// # Restarting after a crash
//
// A killed process never leaves the group, so its partitions move only when its session times
// out (Config.SessionTimeout). With Config.Instance (`-instance`), a process of the same
// instance started on the same host removes such a member at once, when its process is provably
// gone (see instance.go): on the kill benchmark with 1M live pairs, every partition was restored
// 0.33 s after the new process started instead of 6.3 s (6 s session), the tail after the
// snapshots replayed by 0.68 s instead of 6.7 s. Members on other hosts, and running ones, are
// left to their sessions.
//
// # Snapshots live in Redis
//
// RedisStore keeps each partition's newest snapshot as a manifest and 8 MiB chunks under one hash
// tag, replaced together in one MULTI/EXEC and read back with a CRC-32C check. Redis rather than
// the compacted snapshots topic because:
//
//   - replacement is atomic and restore reads exactly one snapshot with two round trips, whatever
//     the snapshot's size; a compacted topic needs chunking (records are capped at
//     kafkax.MaxSnapshotRecordBytes), a scheme to tell a complete snapshot from a torn one, and
//     either a scan of the uncompacted tail (compaction never touches the active segment, so old
//     snapshots pile up there for up to segment.ms) or an index of its own;
//   - Redis is already part of every deployment (the projections' stores);
//   - a snapshot is only a cache of the log: losing it (Redis without persistence, a flushed
//     database) costs replay time, never correctness, as long as the input topic still holds the
//     partition from offset 0. A snapshot that fails its checksum stops the partition with
//     ErrCorruptSnapshot rather than silently replaying from the start. A snapshot that cannot be
//     stored is logged and counted, and processing goes on (restore needs Redis; running does
//     not).
//
// MemStore is the in-memory twin for tests.
//
// # When snapshots are taken
//
// After SnapshotEvery input records (default 200 000) or SnapshotInterval of wall-clock time with
// input (default 30 s), whichever comes first, and when a partition is revoked or the process
// stops. Wall-clock time rather than stream time, because what a snapshot bounds is the work of a
// restore (records to replay), and stream time can jump by days in a replay. Every snapshot is
// taken at a batch boundary, after the batch's outputs are acknowledged.
//
// # Bad input
//
// A record that does not decode (kafkax.FromMessage) or that the engine refuses goes to the
// dead-letter topic's same partition as a deadletter.v1 event with the reason, the error kind
// (events.KindOf; engine refusals are "invalid"), topic, partition, offset, key, headers and the
// original bytes; the partition moves on. Events set aside as too late keep the input's bytes in
// their Original field.
//
// # Metrics and endpoints
//
// With Config.HTTPAddr set: /metrics (Prometheus: convmeter_aggregator_events_in_total and
// _events_out_total by type, _lag and _live_pairs by partition, _set_aside_total,
// _dead_letters_total by kind, _suppressed_total, _snapshot_timestamp_seconds by partition and
// _snapshot_age_seconds of the oldest, snapshot, restore and batch histograms), /healthz (the
// process answers) and /readyz (joined the group and every assigned partition restored).
//
// # Rebalancing and shutdown
//
// The consumer group is used for assignment only (kafka.ConsumerGroup); each assigned partition is
// read by its own partition reader (kafkax.PartitionReader, which fetches ahead and decodes each
// fetch response in one pass), positioned at the snapshot's offset. When a generation ends
// (rebalance) or ctx ends, each partition finishes the batch in hand, snapshots, commits and
// returns, within ShutdownTimeout.
package aggregator
