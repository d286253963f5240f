// Package audit is convmeter's offline audit: the same window engine and projections as the live
// path, in memory, over an exported file of raw Meta webhook payloads (JSON lines, one webhook
// POST body per line, as Meta sent them). It needs no Kafka and no Redis.
//
// Each line goes through the ingest normaliser (ingest.Normalize) and its events, in file order,
// through the aggregator's Processor (the window engine) and then into the billing and rate-limit
// projections. The projections' Redis stores run against an embedded in-process Redis
// (miniredis), because billing settlement (the CBP free tier and the PMP volume tiers) is a query
// over the stored ledger: the audit therefore runs exactly the code the deployment runs. Account
// facts come from an accounts file (LoadAccounts), rates from rate-card files.
//
// Cost: on the 2-core development VM, a webhook export of the loadgen model (`convmeter loadgen
// -mode file`, 4 numbers) audits 1M lines in 17.6 s with 1.3 GB peak RSS, JSON report included
// (2026-11-25; a month's 8.24M lines: see the README's benchmark table). The whole state is in
// memory, but the report's settled lines are printed a page at a time from the embedded Redis
// (see Result). That holds because the embedded Redis is the patched miniredis of
// third_party/miniredis: upstream sorts a sorted set on every range read, and the rate-limit
// projection's reads made an audit quadratic (1M lines: 84 s).
//
// The Report lists the settled ledger of every WABA-month (lines and totals per category, in the
// WABA's currency's minor units as decimal money, and exact in micros), the messaging-limit
// counters, throughput peaks and pair-rate hits as of the end of the file, every difference
// between Meta's own pricing/conversation fields and our verdict (reconciliation), and every
// line or element that could not be used, with its line number and reason: bad input is counted
// and shown, never dropped silently.
package audit
