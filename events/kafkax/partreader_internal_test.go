package kafkax

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"testing"
	"time"
	"unsafe"

	"github.com/segmentio/kafka-go"
)

// batchAt returns a sealed record batch of n records (values "v<first+i>", keys "k<i>", two
// headers each) as the broker stores it at base offset first.
func batchAt(t *testing.T, c kafka.Compression, first int64, n int) []byte {
	t.Helper()
	b := NewRecordBatch(c)
	for i := range n {
		v := []byte(fmt.Sprint("v", first+int64(i)))
		if err := b.Append([]byte(fmt.Sprint("k", i)), v, []kafka.Header{{Key: HeaderType, Value: []byte("t")}, {Key: "x", Value: v}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Seal(time.UnixMilli(1_763_000_000_000)); err != nil {
		t.Fatal(err)
	}
	raw := bytes.Clone(b.Bytes()[batchSizePrefix:])
	binary.BigEndian.PutUint64(raw, uint64(first))
	return raw
}

// TestDecodeBatches checks the fetch response decoding against batches in every codec: records at
// and after the fetch offset only, the batch the fetch ends with ignored when partial, control
// batches skipped but counted in the next offset, and corrupt batches refused.
func TestDecodeBatches(t *testing.T) {
	var records []byte
	var next int64
	for _, c := range []kafka.Compression{0, kafka.Lz4, kafka.Snappy, kafka.Zstd, kafka.Gzip} {
		records = append(records, batchAt(t, c, next, 50)...)
		next += 50
	}
	control := batchAt(t, 0, next, 1)
	binary.BigEndian.PutUint16(control[21:], 0x20|0x10)
	binary.BigEndian.PutUint32(control[17:], crc32.Checksum(control[21:], crc32c))
	records = append(records, control...)
	next++
	records = append(records, batchAt(t, kafka.Lz4, next, 10)...)
	next += 10
	full := len(records)
	records = append(records, batchAt(t, 0, next, 10)[:40]...) // the partial batch a fetch may end with

	f := &fetcher{cfg: PartitionReaderConfig{Topic: "t", Partition: 3}, keys: map[string]string{}}
	// Fresh memory for every decode, then (Reuse) one respMem that every decode fills again.
	for _, mem := range []*respMem{nil, {}} {
		decodeBatchesFrom(t, f, mem, records, next, 250)
	}
	bad := bytes.Clone(records[:full])
	bad[len(bad)-1] ^= 1
	if _, _, err := f.decodeBatches(nil, bad, 0, 999); err == nil {
		t.Fatal("a corrupt batch decoded")
	}
}

// decodeBatchesFrom decodes records (batches of batchAt, next the offset after them, control the
// offset of a control record or -1) from several offsets into mem and checks the records each
// time.
func decodeBatchesFrom(t *testing.T, f *fetcher, mem *respMem, records []byte, next, control int64) {
	t.Helper()
	for _, from := range []int64{0, 1, 49, 50, 120, 249, 250, 251, 255} {
		if mem != nil {
			mem.reset()
		}
		msgs, got, err := f.decodeBatches(mem, records, from, 999)
		if err != nil {
			t.Fatal(err)
		}
		if got != next {
			t.Fatalf("from %d: next offset %d, want %d", from, got, next)
		}
		want := from
		for _, m := range msgs {
			if want == control {
				want++ // the control record
			}
			if m.Offset != want || m.Topic != "t" || m.Partition != 3 || m.HighWaterMark != 999 {
				t.Fatalf("from %d: record %s/%d@%d hw %d, want offset %d", from, m.Topic, m.Partition, m.Offset, m.HighWaterMark, want)
			}
			v := fmt.Sprint("v", want)
			if string(m.Value) != v || len(m.Headers) != 2 || m.Headers[0].Key != HeaderType || string(m.Headers[1].Value) != v || m.Time.UnixMilli() != 1_763_000_000_000 {
				t.Fatalf("from %d: record %d: %q %v %v", from, m.Offset, m.Value, m.Headers, m.Time)
			}
			want++
		}
		if want != next {
			t.Fatalf("from %d: records up to %d, want up to %d", from, want, next)
		}
	}
}

// TestDecodeBatchesReusesMemory: with Reuse, decoding a response into memory a previous one
// filled allocates nothing (LZ4 and uncompressed batches: the other codecs' readers allocate on
// their own), and the records are those of the new response.
func TestDecodeBatchesReusesMemory(t *testing.T) {
	var records []byte
	var next int64
	for _, c := range []kafka.Compression{kafka.Lz4, 0, kafka.Lz4, kafka.Lz4} {
		records = append(records, batchAt(t, c, next, 200)...)
		next += 200
	}
	f := &fetcher{cfg: PartitionReaderConfig{Topic: "t", Partition: 3}, keys: map[string]string{}}
	mem := &respMem{}
	decodeBatchesFrom(t, f, mem, records, next, -1) // warms mem
	allocs := testing.AllocsPerRun(20, func() {
		mem.reset()
		if _, _, err := f.decodeBatches(mem, records, 0, 999); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per decode into reused memory, want 0", allocs)
	}
	fresh := testing.AllocsPerRun(5, func() {
		if _, _, err := f.decodeBatches(nil, records, 0, 999); err != nil {
			t.Fatal(err)
		}
	})
	if fresh < 4 {
		t.Fatalf("%v allocations per decode into fresh memory: the comparison is vacuous", fresh)
	}
	// Records of a later, different response overwrite the memory: the new values are read.
	other := batchAt(t, kafka.Lz4, 0, 200)
	mem.reset()
	msgs, _, err := f.decodeBatches(mem, other, 0, 999)
	if err != nil || len(msgs) != 200 || string(msgs[199].Value) != "v199" || string(msgs[0].Headers[1].Value) != "v0" {
		t.Fatalf("%d records (%v)", len(msgs), err)
	}
}

// TestDecodeBatchesTakesOneHeaderSlab: the headers of a response's records, several batches of
// records with more headers than the first slab's guess, all go into one slab.
func TestDecodeBatchesTakesOneHeaderSlab(t *testing.T) {
	var records []byte
	const perBatch, batches, perRecord = 100, 4, 11
	for i := range batches {
		b := NewRecordBatch(kafka.Lz4)
		for j := range perBatch {
			hs := make([]kafka.Header, perRecord)
			for k := range hs {
				hs[k] = kafka.Header{Key: fmt.Sprint("h", k), Value: []byte(fmt.Sprint(i, j, k))}
			}
			if err := b.Append(nil, []byte("v"), hs); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Seal(time.UnixMilli(1_763_000_000_000)); err != nil {
			t.Fatal(err)
		}
		raw := bytes.Clone(b.Bytes()[batchSizePrefix:])
		binary.BigEndian.PutUint64(raw, uint64(i*perBatch))
		records = append(records, raw...)
	}
	f := &fetcher{cfg: PartitionReaderConfig{Topic: "t"}, keys: map[string]string{}}
	mem := &respMem{}
	msgs, _, err := f.decodeBatches(mem, records, 0, 999)
	if err != nil || len(msgs) != perBatch*batches {
		t.Fatalf("%d records (%v)", len(msgs), err)
	}
	slab := mem.headers[:cap(mem.headers)]
	for _, m := range msgs {
		h := &m.Headers[perRecord-1]
		if len(m.Headers) != perRecord || uintptr(unsafe.Pointer(h)) < uintptr(unsafe.Pointer(&slab[0])) || uintptr(unsafe.Pointer(h)) > uintptr(unsafe.Pointer(&slab[len(slab)-1])) {
			t.Fatalf("record %d: its headers are not in the response's slab (%d headers of room)", m.Offset, cap(mem.headers))
		}
	}
}
