// Package billing is the billing projection: it turns charge.v1 events into a priced ledger with
// totals, applies the CBP free tier and the PMP volume tiers, keeps reconciliation records where
// Meta's verdict differs from ours, and serves all of it over HTTP.
//
// # Money
//
// Amounts are ratecard.Micros: int64 millionths of the WABA's billing currency, exact for every
// published rate. Nothing is rounded inside the projection; a line's amount is one whole rate and
// totals are exact sums. Micros.MinorUnits rounds (half away from zero) when an invoice needs cents.
//
// # Ledger lines and totals
//
// Every charge event becomes one line (Line): event id, pair, WABA, number, portfolio, month (in the
// WABA's time zone, from Account.Month), market (from the recipient's calling code on the delivery
// day), category, pricing model and type, billable, reason, currency, the rate card it was priced
// on and its list price (the first volume tier). A line that cannot be priced (account not
// configured, no currency, bad time zone, unknown market, no card in force, no rate for the market
// and category) is kept with Unpriced set to the reason, counts in the totals as unpriced, and is
// priced when the events are replayed with a book that has the card. Non-billable lines cost 0.
//
// Totals per WABA-month are kept per partition as counters (lines, billable, unpriced, list amount)
// in buckets per number, market, category, pricing type, model and currency, and merged over
// partitions at query time.
//
// # Free tier and volume tiers: the rule
//
// Pairs of one WABA or portfolio are spread over partitions, which are applied independently and in
// any relative order, so "the first 1,000 conversations of the month" cannot mean "the first
// applied". It means the first in event order: delivery time (Unix seconds), then event id
// (bytewise). Each partition keeps, per group, a sorted set of its members scored by delivery time
// (and, per volume group, hour counters per WABA and number); settlement (at query time) merges the
// partitions:
//
//   - Free tier (domain §1.8): group "ft|<waba>|<month>". Billable CBP conversations count: any
//     category under CBP-2022 up to month 2023-05, service only under CBP-2023 up to month 2024-10
//     (from 2024-11 the engine marks service free itself). The first 1,000 members in event order
//     settle at 0 with pricing type "free_tier"; the rest at their list price.
//   - Volume tiers (domain §3.2): group "vt|<portfolio>|<month>|<market>|<category>|<card>". Billable
//     PMP utility and authentication messages count (only charged messages), per portfolio (the
//     WABA when no portfolio is configured), per month of each WABA's own time zone. The n-th member
//     in event order is priced at the tier with lower < n <= upper of the card's rate; each tier's
//     rate applies only to the messages inside it.
//
// A cut (the B-th member of a group over all partitions) is found by binary search over time with
// pipelined ZCOUNTs, then ordering the members of that second by id. Totals start from the list
// prices and move only what the cuts affect: the free-tier members (at most 1,000 lines read),
// and, per member of a volume group in the WABA (one per partition and number, whose lines share
// one totals key), the count of its lines after each tier cut. A page of lines ranks each line
// directly (its members before it, counted over the group's zsets in one pipeline). The settled
// ledger is therefore a function of the set of applied events, never of the order in which
// partitions were processed.
//
// # PMP-2026 allowance
//
// When the operator's pricing timeline switches on the UNCONFIRMED allowance of free service
// messages per number (domain A2), the engine puts it on each charged PMP-2026 service message
// (charge free_allowance). Such a line joins the group "fa|<allowance>|<waba>|<number>|<month>",
// and, like the CBP free tier, the first <allowance> lines of the group by (delivery time, id),
// across partitions, settle at 0 with pricing type free_allowance (Totals.FreeAllowances per
// number). Off by default: no charge carries it, no line is grouped.
//
// # Member counters (counters.go)
//
// The count of a member's lines after a cut does not need the member's lines in order, only how
// many fall on each side: per partition, volume group and member, one string of big-endian signed
// 32-bit counters counts its lines per hour slot of the group's month (slot 0 is the
// hour starting two days before the month's first instant in UTC; 864 slots, the first and last
// also take everything before and after, so the slot never decreases with time). The lines after
// a cut are the member's counters after the cut's slot plus its lines in the cut's slot after
// the cut (or, for a cut in the first half of its hour, the counters from the cut's slot on less
// its lines of that hour at or before the cut), which are read exactly: the group's sorted set from the cut to the end of its hour (a
// ZRANGEBYSCORE per partition and cut) and those lines' members from the lines hash (the members
// with a sample line each, the counters of the WABA's numbers and the cuts' hours in one round
// trip, the members of those lines in a second). A batch
// reads the range of slots it changes per member (GETRANGE, under the WATCH) and writes it back
// with its counts added (SETRANGE; a retracted or replaced line
// decrements its hour), and one field per member into the group's member hash, whose value is a
// sample line giving the member's totals key and list price. This replaced a sorted set per
// member with a member per line (and a set of members per group): Redis spent about 1.6 µs per
// tiered line on that insert (INFO commandstats). The counters are read and written as byte
// ranges rather than with BITFIELD INCRBY (no read needed) because miniredis, the embedded Redis
// of `convmeter dev` and `audit`, has no BITFIELD. Free-tier groups have
// no member counters: their settlement reads the (at most 1,000) free lines themselves.
//
// Stored layout change: partitions written before the member counters (keys ":gs:" and ":gw:")
// cannot be settled by this version; Totals fails with ErrOldLayout for their volume groups rather
// than settle them wrongly. A replay (services/replay) into a fresh namespace rebuilds them; lines,
// indexes, group sorted sets, totals and reconciliation records are unchanged.
//
// # Exactly once
//
// Apply WATCHes the partition's high-water hash, reads the high-water causes of the batch's source
// partitions and the stored versions of the ids its corrections retract (one pipelined round
// trip), computes the Plan purely (Apply), and writes every line, index, group member, counter,
// reconciliation record and the new marks in one MULTI/EXEC, which fails if a mark moved
// meanwhile (then it retries). A batch read from the log also has its log position checked against
// the one stored in the same read and recorded in the same transaction: a store behind it (Redis
// restored from an older state) refuses the batch with a projections.GapError, and the consumer
// reads the missing records again (services/projector). Events at or below the mark are skipped; there are no per-event
// dedupe keys. All keys of a partition share the hash tag {p<partition>} (keys
// "<prefix>billing:{p<n>}:..."), so the transaction is valid on Redis Cluster. A correction removes
// the lines and records of the ids it retracts and takes their counts out in the same transaction;
// it lives in the same partition as its pair. Events without a cause cannot be applied exactly
// once: they are recorded in the partition's "bad" hash with the reason and logged. (MULTI/EXEC
// replaced a Lua script: the same writes cost Redis about half the CPU without the Lua argument
// conversions, measured 480 vs 900 ms of Redis CPU for 155k events.)
//
// # Reconciliation
//
// A message.delivered.v1 with Meta's verdict is compared with ours (Compare): billable, category
// (after normalising spellings), pricing type, pricing model, and whether each side put the message
// in a conversation. Messages that differ are kept as Diff records with counts per kind.
//
// # Performance (scripts/bench-billing.sh; 2 vCPU)
//
// Run of 2026-11-24 on an otherwise idle machine (load 1.0-1.1), local Redis with AOF everysec,
// batches of 5000, 60 batches per figure. Charges with delivery times in log order (as the
// aggregator emits them): 187k events/s one writer, 237k with 2 writers on disjoint partitions,
// 274k with 4 (`convmeter project` runs 4 by default). With delivery times at random over 20 days
// (every sorted-set insert lands anywhere: the worst case): 150k, 221k and 230k. Per event about
// 2.6-3.4 µs of Go CPU (plan, encoding, client, GC) and 2.9-4.2 µs of Redis CPU (INFO CPU), most
// of the latter the inserts themselves (a hash field, an index member, a group member for a tiered
// line) and a counter range per member and hour; random order costs Redis about a quarter more.
// The pure plan ran at 0.77-1.2M events/s. Member counters are read and written as ranges
// (GETRANGE/SETRANGE) because miniredis has no BITFIELD; BITFIELD measured 1.1-1.2x their rate.
// With 1M lines stored: a 100-line page p50 1.7 ms, p99 5.2 ms; settled totals of a 250k-line
// WABA-month with volume tiers crossed p50 23 ms, most of it finding the cuts. Under load 3-5 (other
// work on the machine) all of these fall by a third or more.
//
// # Redis keys (prefix P, partition n; all start with "Pbilling:{pn}")
//
//	:hw                 hash  source partition → "offset:index" high-water cause; "next" → the log
//	                          position after the last batch read from the log (projections.CheckPosition)
//	:l                  hash  event id → line (codec.go: positional, version 2 written, 1 still read)
//	:wm:<waba>|<month>  zset  line ids by delivery time (paging)
//	:t:<waba>|<month>   hash  totals counters "<dimension>:<value>|<measure>"
//	:g:<group>          zset  the group's members in this partition, by delivery time (cuts, ranks)
//	:gc:<waba>#<number>#<group>  string  volume group: the number's lines per hour slot (i32, big-endian)
//	:gm:<group>         hash  volume group: "<waba>#<number>" with lines in this partition → a sample line
//	:d, :dz:<wm>, :dc:<wm>  reconciliation records, index, counts per kind
//	:bad                hash  events that could not be applied, with the reason
//
// plus Pbilling:partitions, a set naming the partitions written (idempotent, outside the unit).
package billing
