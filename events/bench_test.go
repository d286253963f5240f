package events

import (
	"encoding/json"
	"reflect"
	"testing"
)

// Benchmarks of the codec for every input type (the hot path: the aggregator decodes every input
// and the projections every output), each beside encoding/json on the same structs in the same
// run. The encoding/json baselines:
//   - decode "stdlib_typed": one json.Unmarshal into an envelope struct whose data field already
//     has the concrete payload type: the best encoding/json can do when the type is known upfront;
//   - decode "stdlib_twopass": what a type-dispatching decoder does with encoding/json alone (and
//     what this codec did before the envelope scanner): unmarshal the envelope with data as a
//     RawMessage, then unmarshal data into the payload;
//   - encode "stdlib": json.Marshal of an envelope struct with the concrete payload.
//
// Run: go test -run '^$' -bench 'Codec' -benchmem ./events/   (see also scripts/bench.sh if present)

type stdEnvelope[P any] struct {
	V     int      `json:"v"`
	ID    string   `json:"id"`
	Type  Type     `json:"type"`
	Key   string   `json:"key"`
	Time  UnixTime `json:"time"`
	Cause *Cause   `json:"cause,omitempty"`
	Data  P        `json:"data"`
}

type rawEnvelope struct {
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
			for b.Loop() {
				env := stdEnvelope[any]{Data: reflect.New(pt.Elem()).Interface()}
				if err := json.Unmarshal(wire, &env); err != nil {
					b.Fatal(err)
				}
			}
			reportRate(b)
		})
		b.Run(string(e.Type)+"/stdlib_twopass", func(b *testing.B) {
			b.SetBytes(int64(len(wire)))
			b.ReportAllocs()
			for b.Loop() {
				var env rawEnvelope
				if err := json.Unmarshal(wire, &env); err != nil {
					b.Fatal(err)
				}
				p, _ := NewPayload(env.Type)
				if err := json.Unmarshal(env.Data, p); err != nil {
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
			buf := make([]byte, 0, 4096)
			for b.Loop() {
				var err error
				if buf, err = Encode(buf[:0], e); err != nil {
					b.Fatal(err)
				}
			}
			reportRate(b)
		})
		b.Run(string(e.Type)+"/stdlib", func(b *testing.B) {
			b.SetBytes(int64(len(wire)))
			b.ReportAllocs()
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
