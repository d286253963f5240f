package kafkax

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/pierrec/lz4/v4"
)

func lz4Encode(t testing.TB, data []byte, opts ...lz4.Option) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := lz4.NewWriter(&buf)
	if err := w.Apply(opts...); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func lz4TestData() [][]byte {
	rng := rand.New(rand.NewPCG(5, 6))
	noise := make([]byte, 300<<10)
	for i := range noise {
		noise[i] = byte(rng.Uint32())
	}
	text := bytes.Repeat([]byte(`{"v":1,"type":"message.status.v1","data":{"wamid":"wamid.HBgM5511","status":"delivered"}}`), 60000)
	mixed := append(append(append([]byte(nil), text[:2<<20]...), noise...), text[:3<<20]...)
	return [][]byte{nil, []byte("x"), text[:1000], noise, mixed}
}

// The decoder reads what pierrec/lz4 (kafka-go's codec, and the writer of our own batches'
// framing) writes with every option a producer may set, into a buffer with and without room.
func TestAppendLZ4Decoded(t *testing.T) {
	var scratch []byte
	for _, data := range lz4TestData() {
		for _, bs := range []lz4.BlockSize{lz4.Block64Kb, lz4.Block256Kb, lz4.Block1Mb, lz4.Block4Mb} {
			for _, opts := range [][]lz4.Option{
				{lz4.BlockSizeOption(bs)},
				{lz4.BlockSizeOption(bs), lz4.ChecksumOption(false)},
				{lz4.BlockSizeOption(bs), lz4.BlockChecksumOption(true)},
				{lz4.BlockSizeOption(bs), lz4.SizeOption(uint64(len(data)))},
			} {
				frame := lz4Encode(t, data, opts...)
				// Room for none of it, half, all but a byte, exactly all, and more than a block.
				for _, room := range []int{0, len(data) / 2, len(data) - 1, len(data), 8 << 20} {
					room = max(room, 0)
					prefix := []byte("kept")
					dst := append(make([]byte, 0, len(prefix)+room), prefix...)
					got, err := appendLZ4Decoded(dst, frame, &scratch)
					if err != nil {
						t.Fatalf("%d bytes, block %v, room %d: %v", len(data), bs, room, err)
					}
					if !bytes.Equal(got[:4], prefix) || !bytes.Equal(got[4:], data) {
						t.Fatalf("%d bytes, block %v, room %d: decoded %d bytes, not the data", len(data), bs, room, len(got)-4)
					}
				}
			}
		}
	}
}

// A frame cut short anywhere, or with bytes after it, is an error, never a panic, whatever room
// the buffer has.
func TestAppendLZ4DecodedRejectsBrokenFrames(t *testing.T) {
	var scratch []byte
	frame := lz4Encode(t, lz4TestData()[4], lz4.BlockSizeOption(lz4.Block64Kb), lz4.BlockChecksumOption(true))
	for n := 0; n < len(frame); n += 1 + n/50 {
		for _, room := range []int{0, 1 << 10, 8 << 20} {
			if _, err := appendLZ4Decoded(make([]byte, 0, room), frame[:n], &scratch); err == nil {
				t.Fatalf("frame cut at %d of %d bytes, room %d: no error", n, len(frame), room)
			}
		}
	}
	// A block whose content is corrupt (a match reaching before the start) fails both in the
	// buffer and in scratch.
	one := lz4Encode(t, bytes.Repeat([]byte("abcdefgh"), 4096), lz4.BlockSizeOption(lz4.Block4Mb), lz4.ChecksumOption(false))
	bad := append([]byte(nil), one...)
	// The first sequence (after the 7-byte frame header and the block size): a token, its
	// literals (fewer than 15 here), then the match offset, set past anything decoded.
	at := 7 + 4 + 1 + int(bad[7+4]>>4)
	bad[at], bad[at+1] = 0xff, 0xff
	for _, room := range []int{0, 1 << 10, 8 << 20} {
		if _, err := appendLZ4Decoded(make([]byte, 0, room), bad, &scratch); err == nil {
			t.Fatalf("corrupt block, room %d: no error", room)
		}
	}
	if _, err := appendLZ4Decoded(nil, append(frame, 0), &scratch); err == nil {
		t.Fatal("a byte after the frame: no error")
	}
}

// FuzzAppendLZ4Decoded: any input decodes or fails without panicking, the same with and without
// room in the buffer, and when pierrec/lz4's own reader (which also checks the checksums) decodes
// it, the result is the same.
func FuzzAppendLZ4Decoded(f *testing.F) {
	for _, data := range lz4TestData()[:4] {
		f.Add(lz4Encode(f, data, lz4.BlockSizeOption(lz4.Block64Kb)))
		f.Add(lz4Encode(f, data, lz4.BlockSizeOption(lz4.Block64Kb), lz4.BlockChecksumOption(true), lz4.SizeOption(uint64(len(data)))))
	}
	f.Fuzz(func(t *testing.T, frame []byte) {
		var scratch []byte
		got, err := appendLZ4Decoded(nil, frame, &scratch)
		want, werr := io.ReadAll(lz4.NewReader(bytes.NewReader(frame)))
		if err == nil && werr == nil && !bytes.Equal(got, want) {
			t.Fatalf("decoded %d bytes, pierrec/lz4 %d", len(got), len(want))
		}
		// Into a buffer with room (blocks decode in place), the same outcome.
		roomy, rerr := appendLZ4Decoded(make([]byte, 0, 4*len(frame)+64), frame, &scratch)
		if (rerr == nil) != (err == nil) || err == nil && !bytes.Equal(roomy, got) {
			t.Fatalf("with room: %d bytes, error %v; without: %d bytes, error %v", len(roomy), rerr, len(got), err)
		}
	})
}

// BenchmarkLZ4Decode decodes a 1 MiB batch of records framed as kafka-go's writer frames them
// (4 MiB blocks, content checksum), into a buffer of the batch's size: with pierrec/lz4's Reader
// as kafka-go's codec does, and with appendLZ4Decoded.
func BenchmarkLZ4Decode(b *testing.B) {
	data := lz4TestData()[4][:1<<20]
	frame := lz4Encode(b, data, lz4.BlockSizeOption(lz4.Block4Mb))
	b.Run("pierrec-reader", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			out, err := decompress(make([]byte, 0, len(data)+len(data)/8+4096), io.NopCloser(lz4.NewReader(bytes.NewReader(frame))))
			if err != nil || len(out) != len(data) {
				b.Fatal(err)
			}
		}
	})
	b.Run("appendLZ4Decoded", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		var scratch []byte
		for b.Loop() {
			out, err := appendLZ4Decoded(make([]byte, 0, len(data)+len(data)/8+4096), frame, &scratch)
			if err != nil || len(out) != len(data) {
				b.Fatal(err)
			}
		}
	})
}
