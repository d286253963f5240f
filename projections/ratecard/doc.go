// Package ratecard loads rate cards and the dated calling-code → market mapping (domain A5, §3.1)
// and answers price quotes. Rates are data: the operator loads Meta's published lists converted to
// the format below; the files under examples/ are clearly labelled example values.
//
// # Format
//
// Both file kinds are CSV (Meta publishes CSVs) with '#' comments. Every row starts with its kind,
// so a file reads on its own and errors name file and line.
//
// A rate card is one file per (currency, effective date):
//
//	card,id,meta-2025-07-usd          optional; default "<currency>@<effective_from>"
//	card,currency,USD                 required: the WABA billing currency the card prices in
//	card,effective_from,2025-07-01    required: first day, 12:00 AM in the WABA's time zone
//	card,effective_until,2025-10-01   optional: first day no longer covered; default: next card
//	rate,India,marketing,,0.0107      market, category, volume tier (empty = all), unit price
//	rate,India,utility,0:1000,0.0014  tier "lower:upper": the n-th charged message, lower < n <= upper
//	rate,India,utility,1000:MAX,0.0012
//
// A market map declares markets and maps calling-code prefixes onto them, by date:
//
//	market,Rest of Latin America
//	prefix,1809,Rest of Latin America,,            from (inclusive), until (exclusive); empty = open
//	prefix,263,Other,,2025-10-01
//	prefix,263,Rest of Africa,2025-10-01,
//
// Loading validates everything and reports every problem at once: unknown market or category,
// negative or over-precise price (more than six decimals), missing currency or effective date,
// two cards of one currency in force on the same day, overlapping date ranges for one prefix,
// tiers that are not contiguous from 0 to MAX.
//
// # Semantics
//
// A price is in Micros (1e-6 of the currency unit, int64), exact for every published rate. The
// card in force on a day is the one of that currency with the latest effective_from not after the
// day (and before its effective_until, when given). Days are civil dates in the WABA's time zone:
// callers pass the event time already in that location (or a "YYYY-MM-DD" to the ...On variants).
// The market of a recipient is the longest calling-code prefix of its wa_id digits among the rows
// in force that day; +1 809/829/849, 658/876 and 787/939 therefore land in Rest of Latin America.
package ratecard
