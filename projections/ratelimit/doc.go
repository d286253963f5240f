// Package ratelimit is the rate-limit projection: messaging limits, throughput and the pair rate
// limit (domain §4), plus the per-pair service-window and conversation state that admission
// needs, built from the conversation-events topic.
//
// # Contract
//
// Reduce is the pure core: given the part of a partition's state a batch reads (a View) and the
// batch's events, it returns the net changes. No clock, no I/O; everything counts in event time,
// so replaying the log rebuilds the same state. Store is the Redis shell: under WATCH of the
// partition's meta hash it loads the View (pipelined HMGETs, the WATCH sent with them; a batch
// with a correction reads the retracted ids' undo records with the load script in the same
// pipeline, and what they touched beyond the batch in a second call), runs Reduce and writes the
// changes (variadic commands), the trims (a Lua script) and the new high-water cause in one MULTI/EXEC
// per batch (projections.Projection); a writer moving the mark in between aborts the EXEC and
// the batch is recomputed. Events at or below the stored high-water cause are skipped, so a
// batch applied twice changes nothing the second time.
//
// What counts:
//   - Messaging limit: a message.delivered.v1 outside the customer service window (InsideCSW
//     false) counts its user toward the scope chosen by the delivery's own time: the phone number
//     before 2025-10-07 (PortfolioSwitch), the business portfolio from then on. A user counts
//     once per scope and stays counted until their latest counted delivery + 24 h.
//   - Throughput: every message.dispatched.v1 (outbound) and window.opened.v1 (inbound, refresh
//     or not) adds one to its number's count for that second.
//   - Pair rate: every message.dispatched.v1 takes a token from its pair's bucket (capacity 45,
//     one token per 6 s, in event time). A message finding the bucket empty is recorded as a
//     would-be 131056 (number, user, wamid, time) and spends nothing.
//   - Pair state: window.opened/expired and conversation.opened/closed keep each pair's service
//     window (with the newest entry-point time, for free-entry-point eligibility) and its open
//     conversations per category.
//   - correction.v1 undoes each retracted output it applied, newest first. Every applied output
//     leaves an undo record (kept UndoWindow, at least the engine's allowed lateness): a counted
//     delivery is removed from the user's deliveries and the user's latest recomputed from the
//     rest (exact); a dispatch gives its second back and restores the bucket it found when
//     nothing has used the bucket since (exact), else refunds one token; a pair field is
//     restored when nothing has changed it since.
//
// # Redis layout
//
// Every key of partition p starts with the namespace <ns> (default "convmeter:ratelimit:") and
// carries the hash tag "{rl.p<p>}", so each batch's atomic write touches one Redis Cluster slot
// (written {ns:pP} below):
//
//	{ns:pP}:meta        HASH  hw = "offset:index" of the last applied cause, st = stream time,
//	                          lc = the last counter trim, next = the log position after the last
//	                          batch read from the log (projections.CheckPosition; checked under the
//	                          same WATCH, a store behind it refuses the batch with a GapError)
//	{ns:pP}:lim:<scope> ZSET  user → latest counted delivery time   (scope "pn:<id>" | "pf:<id>")
//	{ns:pP}:limk        ZSET  scope → latest counted delivery (which counters to trim)
//	{ns:pP}:dlx:<day>   ZSET  score 0, "scope|user|time12|id": counted deliveries of a UTC day (lex)
//	{ns:pP}:dlxk        ZSET  day → its last second
//	{ns:pP}:fx:<hour>:<b> LIST log of the undo records of the outputs of an hour of event time
//	                          whose id falls in bucket b (FNV-1a mod 256), written by batches with
//	                          at least 1,024 new records in the hour: an element per batch, its
//	                          entries (id, record) in order, the last of an id standing, an empty
//	                          one a deletion (undolog.go). A record: "\x02", kind, varint time,
//	                          the kind's fields (v1 still read)
//	{ns:pP}:fx:<hour>   HASH  output id → undo record, set by smaller batches (and before the
//	                          logs); an id's record here stands over its logs' entries: a record
//	                          set again or deleted goes to the logs and leaves the hash
//	{ns:pP}:fxk         ZSET  hour → its last second
//	{ns:pP}:tp:<pn>:<h> HASH  "m<minute's first second>" → the number's messages (inbound +
//	                          outbound) in each second of that minute of hour h, ",3,,1" (tput.go;
//	                          a field per second, "<unix second>" → count, is still read)
//	{ns:pP}:tpk         ZSET  "pn|hour" → the hour's last second
//	{ns:pP}:pb:<hour>   HASH  pair → token bucket "units:at" (absent = full), by hour of its time;
//	                          a pair has at most one entry over all hours
//	{ns:pP}:pbk         ZSET  hour → its last second + 270 s (every bucket of it is full by then)
//	{ns:pP}:pr          HASH  "pair|w" → service window, "pair|c|<category>" → conversation
//	{ns:pP}:prt:<hour>  LIST  pair fields set with an expiry in that hour, for the trim, which
//	                          deletes those whose value has then expired (pairtrim.go); a batch
//	                          pushes each hour's fields as one command
//	{ns:pP}:prtk        ZSET  hour → its last second
//	{ns:pP}:prt         ZSET  pair field → expiry: the trim index before the lists, still trimmed
//	{ns:pP}:hit:<pn>    ZSET  "user|wamid|id" → time of a would-be 131056
//	{ns:pP}:hitt        ZSET  "pn|user|wamid|id" → time (trim index)
//	{ns:pP}:acct        ZSET  score 0, lex: account facts by effective time (see account.go)
//
// Hours and days are Unix time divided by 3600 and 86400. Elements that expire together live in
// one key per hour or day, so trimming drops whole keys (UNLINK) instead of indexing every
// element; that halves the writes per event.
//
// A pair lives in one partition, but one portfolio's pairs (and one user reached through several
// numbers of a portfolio) spread over many, so a scope's counter is split by partition. Queries
// merge them: the distinct-user union with the maximum latest delivery per user (Store.Limit),
// summed seconds for throughput, the union of hits. Admission first sums ZCOUNT over partitions,
// an upper bound on distinct users; only when that bound leaves no headroom does it take the
// exact union, so the decision is always exact.
//
// # What queries cache
//
// The counters, seconds, buckets and pair fields an admission reads are read from Redis on every
// request, after it arrived (one pipeline: per partition ZCOUNT and ZMSCORE of the scope's
// counter and HMGET of the number's second; the pair's buckets and fields; absent values come
// back as array elements, not nil replies). Admissions that arrive while another admission's read
// is in flight wait for it and then go out together in one pipeline (at most 64; a lone admission
// goes out at once), with the reads of one key merged: one ZCOUNT per counter and window, one
// ZMSCORE per counter for all the users asked about, one HMGET per hash for all the fields. That
// changes no answer, only the round trips: measured at 5,000 admissions/s on a busy 2-core
// machine (TestAdmissionLoad, load average 1.9-4.4) it shed nothing and had a p99 of 9-88 ms
// where reading each admission alone shed up to 7% and had a p99 of 42-370 ms
// (WithAdmissionBatching(false) turns it off). Only account facts are cached, and only for the account TTL (WithAccountCache,
// default 1 s; 0 turns it off): each lex prefix is read from every partition, merged and parsed
// once per load (configs decoded, tiers parsed, a portfolio's numbers listed), reloaded ahead of
// expiry by one caller past half the TTL and never served older than the TTL. TierOf also
// remembers a scope's resolved tier with the span of event times it holds for; the memo is
// dropped as soon as any cached fact is replaced or the oldest fact it read is half the TTL old,
// so it answers what resolving the cached facts again would, and is no staler than they are. An
// account event therefore reaches admission at most the TTL after it was applied.
// WithSharedState (off by default) is the one cache of counter data; it bounds its staleness
// by its own TTL.
//
// # Bounded memory
//
// As a partition's stream time (the largest event time it has applied) advances, the script
// trims: days of counted deliveries and counter entries older than the usage window (7 days: the
// 24 h counter is a score range of the same set; counters are trimmed at whole minutes of stream
// time), hours of undo records older than UndoWindow, hours of throughput seconds older than
// ThroughputWindow (1 h), hours of buckets once all are full, pair fields once expired, hits
// older than HitWindow. Each trim is bounded per batch and resumes on the next one. Reads are
// normalised by stream time (a full bucket, an expired field, an undo record or delivery past
// its window read as absent), so how the log was cut into batches never changes the outcome.
//
// # Deliberate limits
//
//   - A query "at T" well before a partition's stream time sees the latest deliveries, not the
//     ones as of T: counters answer for now, not for history (replay rebuilds history).
//   - Out-of-order dispatches of one pair are taken at the bucket's time (time never runs back
//     for a bucket), so the outcome depends on log order, which replay reproduces.
package ratelimit
