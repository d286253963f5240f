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
// (and one per WABA and number of the group); settlement (at query time) merges the partitions:
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
// and, per member zset of the WABA (one per partition and number, whose lines share one totals
// key), the count of members after each tier cut. A page of lines ranks each line directly (its
// members before it, counted over the group's zsets in one pipeline). The settled ledger is
// therefore a function of the set of applied events, never of the order in which partitions were
// processed.
//
// # Exactly once
//
// Apply WATCHes the partition's high-water hash, reads the high-water causes of the batch's source
// partitions and the stored versions of the ids its corrections retract (one pipelined round
// trip), computes the Plan purely (Apply), and writes every line, index, group member, counter,
// reconciliation record and the new marks in one MULTI/EXEC, which fails if a mark moved
// meanwhile (then it retries). Events at or below the mark are skipped; there are no per-event
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
// # Performance (scripts/bench-billing.sh; 2 vCPU shared with other work, load average 4-14)
//
// Pure plan 580-800k events/s. Applied into the local Redis (AOF on, everysec), batches of 5000:
// 97-141k events/s for one writer and 109-173k/s for two partitions in parallel, varying with the
// load; per event about 3.2 µs of Go CPU (plan, encoding, client, GC) and 4.6-4.9 µs of Redis CPU
// (INFO CPU), most of it the inserts themselves (a hash field, one index member, two group members
// for a tiered line). Redis is single-threaded, so about 200k/s is the ceiling of this layout on
// an idle 2-core machine. With 1M lines stored: a 100-line page p50 2.5 ms, p99 10 ms (load 4);
// settled totals of a 250k-line WABA-month with volume tiers crossed p50 26 ms.
//
// # Redis keys (prefix P, partition n; all start with "Pbilling:{pn}")
//
//	:hw                 hash  source partition → "offset:index" high-water cause
//	:l                  hash  event id → line (codec.go: positional, version 2 written, 1 still read)
//	:wm:<waba>|<month>  zset  line ids by delivery time (paging)
//	:t:<waba>|<month>   hash  totals counters "<dimension>:<value>|<measure>"
//	:g:<group>          zset  the group's members in this partition, by delivery time (cuts, ranks)
//	:gw:<waba>#<number>#<group>  zset  the number's members of a group (settled totals by count)
//	:gs:<group>         set   the "<waba>#<number>" with members of the group in this partition
//	:d, :dz:<wm>, :dc:<wm>  reconciliation records, index, counts per kind
//	:bad                hash  events that could not be applied, with the reason
//
// plus Pbilling:partitions, a set naming the partitions written (idempotent, outside the unit).
package billing
