// Package window is convmeter's window engine: the WhatsApp Business Platform's billing rules
// (domain.md) as a pure, deterministic state machine over one partition's input events.
//
// The engine takes input events in log order (Apply) and returns output events: customer service
// windows opened and expired, conversations opened and closed (CBP, and free-entry-point windows
// under every model), messages dispatched and delivered with our verdict beside Meta's, charges
// (per conversation under CBP, per message under PMP, billable or free with a reason), policy
// violations, corrections and events set aside. It reads no clock, no randomness and does no I/O:
// stream time is the largest event time seen, and clock ticks written into the log move it when a
// partition is quiet.
//
// # Late and disordered events
//
// Each pair keeps the facts (user messages, sends, statuses) of the last Lateness in canonical
// order (time, then inbound < send < sent < delivered < read < played < failed, then wamid, A13)
// on top of a base state folded from everything older. A fact that comes after everything the
// pair has seen is applied in place. A fact that lands earlier recomputes the pair from its base;
// the outputs that no longer hold are retracted by one correction.v1 and the new ones follow.
// Output ids are derived from what an output is about (type, pair, identifying fields), so a
// recomputation reproduces the ids of unchanged outputs; an output whose content changed keeps its
// id and is retracted and emitted again. Within the lateness, the outcome (outputs net of
// corrections) is the same whatever the arrival order; an event older than stream time minus the
// lateness is set aside with reason too_late.
//
// # Memory
//
// Pairs with nothing open and nothing a late event could change are evicted. A live pair rests as
// one compact record (times relative to its cut, strings inline) in a chunked, log-structured
// byte arena, indexed by an open-addressing table of offsets; the deadline queue names pairs by
// key hash. The pairs events and deadlines touch are decoded into a small write-back cache
// (2,048 pairs, in sets of 4) and encoded back when another pair needs the slot, so the heap
// holds no per-pair objects for the garbage collector to trace. Settled messages are remembered partition-wide by a
// 64-bit hash of their wamid for the retention period, so a read receipt weeks after delivery is a
// no-op rather than a new delivery.
//
// # Snapshots
//
// Snapshot writes the whole state in a compact, versioned binary format (the pair records as they
// are); Restore reads it into an engine that behaves exactly as the one that wrote it (the aggregator restores a snapshot and
// replays the log tail after it).
//
// Account configuration (number → WABA → portfolio, time zone, currency) is resolved by the event's
// own time from account.config.v1 events, which producers broadcast to every partition. Account
// events pass through to the output so projections see them in the same order.
package window
