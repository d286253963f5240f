package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"

	"github.com/convmeter/convmeter/events/testenv"
)

// Benchmarks of the codec for every input type (the hot path: the aggregator decodes every input
// and the projections every output), each beside encoding/json on the same structs in the same
// run. The encoding/json baselines:
//   - decode "stdlib_typed": one json.Unmarshal into an envelope struct whose data field already
//     has the concrete payload type: the best encoding/json can do when the type is known upfront;
//   - encode "stdlib": json.Marshal of an envelope struct with the concrete payload.
//
// "before" is the codec as it was before the envelope scanner and segmentio/encoding (commit
// 9794fff), kept here verbatim as legacyDecode and legacyEncode so before/after ratios come from
// one run on one machine state.
//
// "generic" is today's codec without the hand-written payload decoders and encoders
// (fastdecode.go, fastencode.go): the segmentio/encoding path they fall back on.
//
// Run: cd events && go test -run '^$' -bench Codec -benchmem .

type stdEnvelope[P any] struct {
	V     int      `json:"v"`
	ID    string   `json:"id"`
	Type  Type     `json:"type"`
	Key   string   `json:"key"`
	Time  UnixTime `json:"time"`
	Cause *Cause   `json:"cause,omitempty"`
	Data  P        `json:"data"`
}

type legacyEnvelope struct {
	V     *int            `json:"v"`
	ID    string          `json:"id"`
	Type  Type            `json:"type"`
	Key   string          `json:"key"`
	Time  UnixTime        `json:"time"`
	Cause *Cause          `json:"cause"`
	Data  json.RawMessage `json:"data"`
}

func benchInputs(b *testing.B) []Event {
	var out []Event
	for _, e := range fullEvents() {
		if e.Type.IsInput() {
			out = append(out, e)
		}
	}
	if len(out) != len(InputTypes) {
		b.Fatalf("%d input samples for %d input types", len(out), len(InputTypes))
	}
	return out
}

// cpuPerOp starts counting the process's CPU time (all threads, so the garbage collector's
// too) and returns the function that reports it per op as "cpu-ns/op". On a machine shared with
// other work, ns/op counts the time the benchmark waited for a core; cpu-ns/op does not.
func cpuPerOp(b *testing.B) func() {
	start := testenv.ProcessCPU()
	return func() { b.ReportMetric(float64(testenv.ProcessCPU()-start)/float64(b.N), "cpu-ns/op") }
}

func reportRate(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkCodecDecode(b *testing.B) {
	for _, e := range benchInputs(b) {
		wire, err := Marshal(e)
		if err != nil {
			b.Fatal(err)
		}
		pt := reflect.TypeOf(e.Data)
		b.Run(string(e.Type)+"/convmeter", func(b *testing.B) {
			b.SetBytes(int64(len(wire)))
			b.ReportAllocs()
			defer cpuPerOp(b)()
			for b.Loop() {
				if _, err := Decode(wire); err != nil {
					b.Fatal(err)
				}
			}
			reportRate(b)
		})
		b.Run(string(e.Type)+"/generic", func(b *testing.B) {
			b.SetBytes(int64(len(wire)))
			b.ReportAllocs()
			defer cpuPerOp(b)()
			for b.Loop() {
				if _, err := decode(wire, false); err != nil {
					b.Fatal(err)
				}
			}
			reportRate(b)
		})
		b.Run(string(e.Type)+"/stdlib_typed", func(b *testing.B) {
			b.SetBytes(int64(len(wire)))
			b.ReportAllocs()
			defer cpuPerOp(b)()
			for b.Loop() {
				env := stdEnvelope[any]{Data: reflect.New(pt.Elem()).Interface()}
				if err := json.Unmarshal(wire, &env); err != nil {
					b.Fatal(err)
				}
			}
			reportRate(b)
		})
		b.Run(string(e.Type)+"/before", func(b *testing.B) {
			b.SetBytes(int64(len(wire)))
			b.ReportAllocs()
			defer cpuPerOp(b)()
			for b.Loop() {
				if _, err := legacyDecode(wire); err != nil {
					b.Fatal(err)
				}
			}
			reportRate(b)
		})
	}
}

func BenchmarkCodecEncode(b *testing.B) {
	for _, e := range benchInputs(b) {
		wire, _ := Marshal(e)
		b.Run(string(e.Type)+"/convmeter", func(b *testing.B) {
			b.SetBytes(int64(len(wire)))
			b.ReportAllocs()
			defer cpuPerOp(b)()
			buf := make([]byte, 0, 4096)
			for b.Loop() {
				var err error
				if buf, err = Encode(buf[:0], e); err != nil {
					b.Fatal(err)
				}
			}
			reportRate(b)
		})
		b.Run(string(e.Type)+"/generic", func(b *testing.B) {
			b.SetBytes(int64(len(wire)))
			b.ReportAllocs()
			defer cpuPerOp(b)()
			buf := make([]byte, 0, 4096)
			for b.Loop() {
				var err error
				if buf, err = encode(buf[:0], e, appendPayloadGeneric); err != nil {
					b.Fatal(err)
				}
			}
			reportRate(b)
		})
		b.Run(string(e.Type)+"/before", func(b *testing.B) {
			b.SetBytes(int64(len(wire)))
			b.ReportAllocs()
			defer cpuPerOp(b)()
			buf := make([]byte, 0, 4096)
			for b.Loop() {
				var err error
				if buf, err = legacyEncode(buf[:0], e); err != nil {
					b.Fatal(err)
				}
			}
			reportRate(b)
		})
		b.Run(string(e.Type)+"/stdlib", func(b *testing.B) {
			b.SetBytes(int64(len(wire)))
			b.ReportAllocs()
			defer cpuPerOp(b)()
			env := stdEnvelope[Payload]{V: 1, ID: e.ID, Type: e.Type, Key: e.Key, Time: e.Time, Cause: e.Cause, Data: e.Data}
			for b.Loop() {
				if _, err := json.Marshal(env); err != nil {
					b.Fatal(err)
				}
			}
			reportRate(b)
		})
	}
}

// BenchmarkCodecEncodeOutputs encodes every output type, as the aggregator does for each output
// of the window engine, with the hand-written encoders ("convmeter") and the generic one.
func BenchmarkCodecEncodeOutputs(b *testing.B) {
	for _, e := range fullEvents() {
		if e.Type.IsInput() {
			continue
		}
		wire, _ := Marshal(e)
		for _, c := range []struct {
			name string
			data func([]byte, Payload) ([]byte, error)
		}{{"convmeter", appendPayload}, {"generic", appendPayloadGeneric}} {
			b.Run(string(e.Type)+"/"+c.name, func(b *testing.B) {
				b.SetBytes(int64(len(wire)))
				b.ReportAllocs()
				defer cpuPerOp(b)()
				buf := make([]byte, 0, 4096)
				for b.Loop() {
					var err error
					if buf, err = encode(buf[:0], e, c.data); err != nil {
						b.Fatal(err)
					}
				}
				reportRate(b)
			})
		}
	}
}

// legacyEncode is Encode as of commit 9794fff.
func legacyEncode(dst []byte, e Event) ([]byte, error) {
	if e.Data == nil {
		return dst, errors.New("no data")
	}
	if e.Type == "" {
		e.Type = e.Data.EventType()
	}
	data, err := json.Marshal(e.Data)
	if err != nil {
		return dst, err
	}
	dst = append(dst, `{"v":`...)
	dst = strconv.AppendInt(dst, EnvelopeVersion, 10)
	dst = append(dst, `,"id":`...)
	dst = strconv.AppendQuote(dst, e.ID)
	dst = append(dst, `,"type":`...)
	dst = strconv.AppendQuote(dst, string(e.Type))
	dst = append(dst, `,"key":`...)
	k, _ := json.Marshal(e.Key)
	dst = append(dst, k...)
	dst = append(dst, `,"time":`...)
	dst = strconv.AppendInt(dst, int64(e.Time), 10)
	if e.Cause != nil {
		dst = append(dst, `,"cause":{"partition":`...)
		dst = strconv.AppendInt(dst, int64(e.Cause.Partition), 10)
		dst = append(dst, `,"offset":`...)
		dst = strconv.AppendInt(dst, e.Cause.Offset, 10)
		dst = append(dst, `,"index":`...)
		dst = strconv.AppendInt(dst, int64(e.Cause.Index), 10)
		dst = append(dst, '}')
	}
	dst = append(dst, `,"data":`...)
	dst = append(dst, data...)
	dst = append(dst, '}')
	return dst, nil
}

// legacyDecode is Decode as of commit 9794fff (error classification reduced to the kind).
func legacyDecode(b []byte) (Event, error) {
	if len(b) > MaxEventSize {
		return Event{}, &DecodeError{Kind: ErrKindTooLarge, Err: errors.New("too large")}
	}
	var w legacyEnvelope
	if err := json.Unmarshal(b, &w); err != nil {
		return Event{}, &DecodeError{Kind: ErrKindMalformed, Err: err}
	}
	if w.V == nil {
		return Event{}, &DecodeError{Kind: ErrKindInvalid, Err: errors.New("v missing")}
	}
	if *w.V < 1 || *w.V > EnvelopeVersion {
		return Event{}, &DecodeError{Kind: ErrKindVersion, Err: fmt.Errorf("version %d", *w.V)}
	}
	p, ok := NewPayload(w.Type)
	if !ok {
		return Event{}, &DecodeError{Kind: ErrKindUnknownType, Err: fmt.Errorf("%q", w.Type)}
	}
	if w.ID == "" {
		return Event{}, &DecodeError{Kind: ErrKindInvalid, Err: errors.New("id missing")}
	}
	if len(w.Data) == 0 || string(w.Data) == "null" {
		return Event{}, &DecodeError{Kind: ErrKindInvalid, Err: errors.New("data missing")}
	}
	if err := json.Unmarshal(w.Data, p); err != nil {
		return Event{}, &DecodeError{Kind: ErrKindMalformed, Err: err}
	}
	e := Event{ID: w.ID, Type: w.Type, Key: w.Key, Time: w.Time, Cause: w.Cause, Data: p}
	if err := Validate(e); err != nil {
		return Event{}, &DecodeError{Kind: ErrKindInvalid, Err: err}
	}
	return e, nil
}

func BenchmarkCodecDecodeOutputs(b *testing.B) {
	for _, e := range fullEvents() {
		if e.Type.IsInput() {
			continue
		}
		wire, _ := Marshal(e)
		pt := reflect.TypeOf(e.Data)
		b.Run(string(e.Type)+"/convmeter", func(b *testing.B) {
			b.SetBytes(int64(len(wire)))
			b.ReportAllocs()
			defer cpuPerOp(b)()
			for b.Loop() {
				if _, err := Decode(wire); err != nil {
					b.Fatal(err)
				}
			}
			reportRate(b)
		})
		b.Run(string(e.Type)+"/stdlib_typed", func(b *testing.B) {
			b.SetBytes(int64(len(wire)))
			b.ReportAllocs()
			defer cpuPerOp(b)()
			for b.Loop() {
				env := stdEnvelope[any]{Data: reflect.New(pt.Elem()).Interface()}
				if err := json.Unmarshal(wire, &env); err != nil {
					b.Fatal(err)
				}
			}
			reportRate(b)
		})
	}
}

// TestLegacyCodecStillAgrees keeps the "before" benchmark honest: the legacy copy decodes and
// encodes today's samples to the same events.
func TestLegacyCodecStillAgrees(t *testing.T) {
	for _, e := range fullEvents() {
		if e.Type.IsInput() {
			wire, _ := Marshal(e)
			got, err := legacyDecode(wire)
			if err != nil || !reflect.DeepEqual(got, e) {
				t.Errorf("%s: legacyDecode: %v", e.Type, err)
			}
			old, err := legacyEncode(nil, e)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := Decode(old); err != nil || !reflect.DeepEqual(got, e) {
				t.Errorf("%s: legacyEncode output does not decode: %v", e.Type, err)
			}
		}
	}
}

// BenchmarkCodecDecodeGoldenMix decodes every golden fixture in turn: a mix of all types with
// realistic sizes, numeric-string times and unknown fields.
func BenchmarkCodecDecodeGoldenMix(b *testing.B) {
	var recs [][]byte
	var total int
	for _, r := range goldenFiles(b) {
		recs = append(recs, r)
		total += len(r)
	}
	for _, c := range []struct {
		name   string
		decode func([]byte) (Event, error)
	}{{"convmeter", Decode}, {"generic", func(b []byte) (Event, error) { return decode(b, false) }}, {"before", legacyDecode}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(total / len(recs)))
			b.ReportAllocs()
			defer cpuPerOp(b)()
			i := 0
			for b.Loop() {
				if _, err := c.decode(recs[i%len(recs)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
			reportRate(b)
		})
	}
}

// loadgenRecords reads testdata/loadgen/replay-sample.jsonl: records of the replay benchmark's
// loadgen traffic (see testdata/README.md).
func loadgenRecords(tb testing.TB) [][]byte {
	tb.Helper()
	raw, err := os.ReadFile(filepath.Join("testdata", "loadgen", "replay-sample.jsonl"))
	if err != nil {
		tb.Fatal(err)
	}
	return bytes.Split(bytes.TrimSpace(raw), []byte("\n"))
}

// BenchmarkCodecDecodeLoadgen decodes the loadgen sample: all of it in turn ("mix", the replay's
// proportions: 60% statuses, 29% outbound sends, 12% inbound messages) and each type alone.
func BenchmarkCodecDecodeLoadgen(b *testing.B) {
	all := loadgenRecords(b)
	byType := map[string][][]byte{"mix": all}
	for _, r := range all {
		var h header
		if err := h.scan(r); err != nil {
			b.Fatal(err)
		}
		byType[string(h.typ)] = append(byType[string(h.typ)], r)
	}
	for _, name := range []string{"mix", string(TypeStatusUpdate), string(TypeOutboundSend), string(TypeInboundMessage)} {
		recs := byType[name]
		total := 0
		for _, r := range recs {
			total += len(r)
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(total / len(recs)))
			b.ReportAllocs()
			defer cpuPerOp(b)()
			i := 0
			for b.Loop() {
				if _, err := Decode(recs[i%len(recs)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
			reportRate(b)
		})
	}
}
