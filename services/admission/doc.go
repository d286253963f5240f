// Package admission is the admission and quote API over the rate-limit projection: "may number N
// send a message of kind K to user U now (or at T), and what will it cost?", plus per-number and
// per-portfolio status. The lead mounts Handler in `convmeter api`.
//
//	POST /v1/admission                 {"phone_number_id","user","kind":"template|free_form","category","at"}
//	GET  /v1/admission?phone_number_id=&user=&kind=&category=&at=
//	GET  /v1/limits/numbers/{id}?at=   tier, used, headroom, when headroom returns, upgrade
//	                                   eligibility, throughput (current, peak), pair-rate hits
//	GET  /v1/limits/portfolios/{id}?at=
//
// at is Unix seconds or RFC 3339; without it, now. A decision lists every reason a message
// would be refused (messaging limit reached, pair rate 131056, outside the service window 131047,
// throughput 130429), whether the delivery would count toward the messaging limit, whether it
// opens a CBP conversation or a free-entry-point window, whether it is free (PMP inside the
// window, FEP) or charged, and the list price from the rate cards: market from the user's
// calling code, the category, the currency of the number's WABA, the card in force on the day
// in the WABA's time zone. Volume tiers are not applied (admission does not know the month's
// count): the price is the first tier's.
//
// Wiring (the lead's `convmeter api` and projector):
//
//	store, err := ratelimit.NewStore(rdb, ratelimit.WithPartitions(n),
//		ratelimit.WithSharedState(250*time.Millisecond)) // 0: every decision reads every partition
//	book, err := ratecard.Load(paths...)
//	h, err := admission.New(store, admission.BookPricer{Book: book}, admission.WithLogger(log))
//	mux.Handle("/v1/", h)
//	err = projector.Run(ctx, projector.Config{Brokers: brokers}, store, log) // consumer group convmeter.ratelimit.v1
//
// Decide is pure; the handler reads one Snapshot (ratelimit.Store.Admission: one pipelined round
// trip, two near the limit) and the rate cards held in memory. Nothing a decision counts is
// cached: the counters, seconds, bucket and pair fields are read on every request; only account
// facts (configs, tiers, a portfolio's numbers) are reused, for at most the store's account TTL
// (1 s by default; see the ratelimit package doc). The usual request body is parsed directly,
// anything else by encoding/json, which words every error.
//
// Cost, measured with TestAdmissionLoad at 5,000 requests/s for 10 s on loopback (12 partitions,
// 20 numbers in 4 portfolios, 20,000 users; the open-loop load generator, speaking HTTP/1.1 over
// keep-alive connections, runs in the test process; shared Redis 7.0, 2 cores shared with other
// work at load average 1.9-4.4): 130-145 µs of process CPU per request (load generator, HTTP
// server, handler and Redis client together; about 40% of it in the kernel: loopback writes and
// reads, goroutine wake-ups) and 45-50 µs of Redis CPU. A lone admission sends 38 or 39 plain
// commands in one pipeline (per partition ZCOUNT, ZMSCORE and HMGET; the pair's bucket and
// fields); admissions that arrive while one is being read share the next pipeline and its reads
// of the same keys (see the ratelimit package doc). ADMISSION_BATCH=0 reads each admission alone,
// for comparison. With ADMISSION_LOAD_RATE set the test only reports; scripts/bench-ratelimit.sh
// runs it.
package admission
