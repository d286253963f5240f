package kafkax_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/events/kafkax"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
)

// batchEvents is a mix of keyed events and a tick (no key), with one value large enough for a
// two-byte length and several that need multi-byte offset deltas.
func batchEvents() []events.Event {
	evs := make([]events.Event, 0, 300)
	for i := range 299 {
		evs = append(evs, statusEvent(i))
	}
	evs = append(evs, events.NewTick(3, 1750030073))
	return evs
}

// readBatch decodes a record set with kafka-go's own protocol reader (the consumer's) and checks
// the header fields it does not check itself.
func readBatch(t *testing.T, raw []byte, want kafka.Compression, n int) []kafka.Message {
	t.Helper()
	if got := int(binary.BigEndian.Uint32(raw)); got != len(raw)-4 {
		t.Fatalf("size prefix %d, want %d", got, len(raw)-4)
	}
	batch := raw[4:]
	if got := int(binary.BigEndian.Uint32(batch[8:])); got != len(batch)-12 {
		t.Fatalf("batch length %d, want %d", got, len(batch)-12)
	}
	if got, want := binary.BigEndian.Uint32(batch[17:]), crc32.Checksum(batch[21:], crc32.MakeTable(crc32.Castagnoli)); got != want {
		t.Fatalf("crc %08x, want %08x", got, want)
	}
	if got := binary.BigEndian.Uint16(batch[21:]) & 7; got != uint16(want) {
		t.Fatalf("codec %d, want %d", got, want)
	}
	if got := int(binary.BigEndian.Uint32(batch[23:])); got != n-1 {
		t.Fatalf("last offset delta %d, want %d", got, n-1)
	}
	var rs protocol.RecordSet
	if _, err := rs.ReadFrom(bytes.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
	var out []kafka.Message
	for {
		r, err := rs.Records.ReadRecord()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		m := kafka.Message{Offset: r.Offset, Time: r.Time, Headers: r.Headers}
		if r.Key != nil {
			m.Key, _ = io.ReadAll(r.Key)
		}
		if r.Value != nil {
			m.Value, _ = io.ReadAll(r.Value)
		}
		out = append(out, m)
	}
	return out
}

// TestRecordBatchEventsAsToMessage checks that AppendEvent writes, with every codec, the records
// ToMessage builds (key, value, headers), as kafka-go's consumer decodes them, and that
// EventSize predicts each record's size exactly.
func TestRecordBatchEventsAsToMessage(t *testing.T) {
	evs := batchEvents()
	now := time.UnixMilli(1_763_000_000_123)
	for _, c := range []kafka.Compression{0, kafka.Lz4, kafka.Snappy, kafka.Zstd, kafka.Gzip} {
		b := kafkax.NewRecordBatch(c)
		for round := range 2 { // the second round reuses the batch's memory
			b.Reset(c)
			var want []kafka.Message
			for _, e := range evs {
				m, err := kafkax.ToMessage(e)
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, m)
				before, size := b.Size(), b.EventSize(e, len(m.Value))
				if err := b.AppendEvent(e, m.Value); err != nil {
					t.Fatal(err)
				}
				if got := b.Size() - before; got != size {
					t.Fatalf("%v: event %d took %d bytes, EventSize said %d", c, len(want)-1, got, size)
				}
			}
			if err := b.Seal(now); err != nil {
				t.Fatal(err)
			}
			if err := b.AppendEvent(evs[0], nil); !errors.Is(err, kafkax.ErrSealed) {
				t.Fatalf("append after seal: %v", err)
			}
			got := readBatch(t, b.Bytes(), c, len(evs))
			if len(got) != len(want) {
				t.Fatalf("%v round %d: %d records, want %d", c, round, len(got), len(want))
			}
			for i := range want {
				g, w := got[i], want[i]
				if g.Offset != int64(i) || !g.Time.Equal(now) {
					t.Fatalf("%v record %d: offset %d time %v", c, i, g.Offset, g.Time)
				}
				if !bytes.Equal(g.Key, w.Key) || (g.Key == nil) != (w.Key == nil) || !bytes.Equal(g.Value, w.Value) {
					t.Fatalf("%v record %d: key %q value %q, want %q %q", c, i, g.Key, g.Value, w.Key, w.Value)
				}
				if len(g.Headers) != len(w.Headers) {
					t.Fatalf("%v record %d: headers %v, want %v", c, i, g.Headers, w.Headers)
				}
				for j := range w.Headers {
					if g.Headers[j].Key != w.Headers[j].Key || !bytes.Equal(g.Headers[j].Value, w.Headers[j].Value) {
						t.Fatalf("%v record %d header %d: %s=%q, want %s=%q", c, i, j, g.Headers[j].Key, g.Headers[j].Value, w.Headers[j].Key, w.Headers[j].Value)
					}
				}
			}
		}
	}
}

// TestRecordBatchAppend checks general records: null key and value, a null header value, a large
// value (multi-byte lengths).
func TestRecordBatchAppend(t *testing.T) {
	big := []byte(strings.Repeat("x", 70000))
	noise := make([]byte, 5<<20) // over one 4 MiB LZ4 block, and incompressible
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range noise {
		noise[i] = byte(rng.Uint32())
	}
	recs := []kafka.Message{
		{Key: []byte("k"), Value: []byte("v"), Headers: []kafka.Header{{Key: "a", Value: []byte("1")}, {Key: "null"}}},
		{},
		{Key: []byte{}, Value: big},
		{Value: noise},
		{Value: big},
	}
	b := kafkax.NewRecordBatch(kafka.Lz4)
	for _, m := range recs {
		if err := b.Append(m.Key, m.Value, m.Headers); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Seal(time.Now()); err != nil {
		t.Fatal(err)
	}
	if b.Size() >= len(noise)+len(big) {
		t.Errorf("sealed size %d: not compressed", b.Size())
	}
	got := readBatch(t, b.Bytes(), kafka.Lz4, len(recs))
	for i, w := range recs {
		g := got[i]
		if (g.Key == nil) != (w.Key == nil) || !bytes.Equal(g.Key, w.Key) || (g.Value == nil) != (w.Value == nil) || !bytes.Equal(g.Value, w.Value) {
			t.Fatalf("record %d: key %q value %d bytes, want %q %d", i, g.Key, len(g.Value), w.Key, len(w.Value))
		}
		if len(g.Headers) != len(w.Headers) {
			t.Fatalf("record %d: %d headers, want %d", i, len(g.Headers), len(w.Headers))
		}
		for j := range w.Headers {
			if g.Headers[j].Key != w.Headers[j].Key || (g.Headers[j].Value == nil) != (w.Headers[j].Value == nil) {
				t.Fatalf("record %d header %d: %+v, want %+v", i, j, g.Headers[j], w.Headers[j])
			}
		}
	}
	empty := kafkax.NewRecordBatch(0)
	if err := empty.Seal(time.Now()); err == nil {
		t.Fatal("sealed an empty batch")
	}
}
