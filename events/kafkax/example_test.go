package kafkax_test

import (
	"context"
	"log/slog"
	"time"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/events/kafkax"
)

// A consumer loop: fetch a batch, decode it, apply it, make the effects durable, then commit one
// offset per partition. Bad records are set aside (dead-lettered) and never stop the partition.
func ExampleFetchBatch() {
	ctx := context.Background()
	brokers := []string{"127.0.0.1:19092"}
	r, err := kafkax.NewGroupReader(brokers, kafkax.GroupBilling, kafkax.ConversationEvents)
	if err != nil {
		slog.Error("reader", "err", err)
		return
	}
	defer r.Close()
	for ctx.Err() == nil {
		b, err := kafkax.FetchBatch(ctx, r, 1000, 100*time.Millisecond)
		if err != nil {
			slog.Error("fetch", "err", err)
			return
		}
		for _, pb := range b.Partitions {
			for _, m := range pb.Messages {
				e, err := kafkax.FromMessage(m)
				if err != nil {
					// write m and events.KindOf(err) to the dead-letter topic, then go on
					slog.Warn("bad record", "topic", m.Topic, "partition", m.Partition, "offset", m.Offset, "kind", events.KindOf(err))
					continue
				}
				_ = e // apply e
			}
		}
		// ... write the effects of b durably, then:
		if err := kafkax.Commit(ctx, r, b); err != nil {
			slog.Error("commit", "err", err)
			return
		}
	}
}
