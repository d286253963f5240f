// Package kafkax is the Kafka plumbing every convmeter service shares, on segmentio/kafka-go:
// topic names, the Java-compatible partitioner, a writer and a consumer-group reader with safe
// defaults, batch fetch and per-partition commit, topic creation that refuses to let co-partitioned
// topics drift, and the CloudEvents Kafka binding of an events.Event.
//
// # Placement
//
// Balancer places a keyed record exactly where the Java client's default partitioner (and
// librdkafka's murmur2_random, kcat -X topic.partitioner=murmur2_random) would:
// toPositive(murmur2(key)) % partitions, via events.Partition. A record marked with ToPartition goes
// to that partition (clock ticks, broadcasts of account events). A record with a nil key and no
// mark goes round robin.
//
// The integration tests prove the placement against independent clients on a real broker: records
// produced by the Java client (kafka.tools.ConsoleProducer), by kcat with
// topic.partitioner=murmur2_random and by kafka-python land on events.Partition(key, n), and kcat
// reads records written through Balancer on the same partitions.
//
// # Batches and commits
//
// FetchBatch collects up to max messages or until maxWait has passed, grouped by partition;
// Commit commits one offset per partition (the last message of each), once the batch's effects are
// durable. Readers made by NewGroupReader never commit on their own (CommitInterval 0), so nothing is
// committed per message and nothing is committed before the caller says so.
//
// # Reading one partition
//
// PartitionReader reads one partition from an offset without a group, as a kafka-go Reader with a
// Partition does, with fetch requests of its own: it fetches ahead and decodes a whole response
// in one pass, the records' keys, values and headers pointing into one buffer per response rather
// than a few allocations per record. FetchInto takes its records a response at a time and returns
// as soon as it has caught up with the log.
//
// # Writing known partitions
//
// A writer that knows the partition of every record and wants each call to be one produce request
// (the aggregator: a chunk is appended whole or not at all) builds a RecordBatch and sends it with
// BatchWriter: the records are encoded once, straight into the request's bytes, with no balancer
// or batching goroutines in between. AppendEvent writes the record ToMessage would build.
//
// # Record layout
//
// ToMessage writes the envelope (events.Encode) as the value, the event key as the record key (nil
// for ticks) and the CloudEvents Kafka binding headers ce_specversion, ce_id, ce_type, ce_source,
// ce_time, ce_subject (the key, when there is one) and content-type. The record timestamp is left to
// the writer (append time): event time lives in the envelope, and putting an old event time into
// the record timestamp would make time-based retention delete replayed history at once.
package kafkax
