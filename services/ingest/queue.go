package ingest

import (
	"context"
	"errors"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
)

// requestQueue hands webhook requests to the Watermill router in process. Unlike gochannel it
// does not serialise deliveries (the router runs each message in its own goroutine), and Publish
// returns only when the router acked or nacked the message, so the HTTP handler answers after the
// whole handler chain, Kafka acknowledgement included, is done.
type requestQueue struct {
	ch      chan *message.Message
	closing chan struct{}
	once    sync.Once
}

var errQueueClosed = errors.New("ingest: request queue closed")

func newRequestQueue() *requestQueue {
	return &requestQueue{ch: make(chan *message.Message), closing: make(chan struct{})}
}

// Publish delivers each message and waits for its ack or nack. A nack is an error.
func (q *requestQueue) Publish(_ string, msgs ...*message.Message) error {
	for _, m := range msgs {
		ctx := m.Context()
		select {
		case q.ch <- m:
		case <-q.closing:
			return errQueueClosed
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case <-m.Acked():
		case <-m.Nacked():
			return errors.New("ingest: request nacked")
		case <-q.closing:
			return errQueueClosed
		}
	}
	return nil
}

// Subscribe returns the one stream of requests; it closes when the queue closes or ctx ends.
func (q *requestQueue) Subscribe(ctx context.Context, _ string) (<-chan *message.Message, error) {
	out := make(chan *message.Message)
	go func() {
		defer close(out)
		for {
			select {
			case m := <-q.ch:
				select {
				case out <- m:
				case <-ctx.Done():
					m.Nack()
					return
				case <-q.closing:
					m.Nack()
					return
				}
			case <-ctx.Done():
				return
			case <-q.closing:
				return
			}
		}
	}()
	return out, nil
}

func (q *requestQueue) Close() error {
	q.once.Do(func() { close(q.closing) })
	return nil
}
