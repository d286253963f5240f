package events

import "testing"

// Vectors from Kafka's own UtilsTest.testMurmur2 (the Java client), as signed 32-bit ints.
var murmur2Vectors = []struct {
	in   string
	want int32
}{
	{"21", -973932308},
	{"foobar", -790332482},
	{"a-little-bit-long-string", -985981536},
	{"a-little-bit-longer-string", -1486304829},
	{"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971},
	// These cover tails of 0 and 2 bytes after the 4-byte blocks; the cross-check against
	// kafka-go in partition_ext_test.go covers every length from 0 to 63.
}

func TestMurmur2JavaVectors(t *testing.T) {
	for _, v := range murmur2Vectors {
		if got := int32(Murmur2([]byte(v.in))); got != v.want {
			t.Errorf("Murmur2(%q) = %d, want %d", v.in, got, v.want)
		}
	}
}

func TestPartition(t *testing.T) {
	for _, v := range murmur2Vectors {
		for _, n := range []int{1, 3, 12, 64, 1000} {
			want := int((uint32(v.want) & 0x7fffffff) % uint32(n))
			if got := Partition([]byte(v.in), n); got != want {
				t.Errorf("Partition(%q, %d) = %d, want %d", v.in, n, got, want)
			}
			if got := PartitionString(v.in, n); got != want {
				t.Errorf("PartitionString(%q, %d) = %d, want %d", v.in, n, got, want)
			}
		}
	}
	if Partition([]byte("x"), 0) != 0 || Partition([]byte("x"), -3) != 0 {
		t.Error("n <= 0 must give partition 0")
	}
	// Every tail length is exercised and stays in range.
	for l := 0; l < 9; l++ {
		key := []byte("abcdefghi"[:l])
		if p := Partition(key, 7); p < 0 || p >= 7 {
			t.Errorf("Partition(%q, 7) = %d", key, p)
		}
	}
}

func BenchmarkPartitionString(b *testing.B) {
	key := "106540352242922/16505551234"
	b.ReportAllocs()
	for b.Loop() {
		_ = PartitionString(key, 64)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "keys/s")
}
