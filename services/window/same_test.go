package window

import (
	"reflect"
	"testing"

	"github.com/convmeter/convmeter/events"
)

// sameData is reflect.DeepEqual for every payload the engine emits: an output against itself,
// against its copy through the wire format, against other outputs, and against copies with one
// field changed (every field in turn, those of the embedded account and of the pointed-to Meta
// verdict and conversation too): a field the comparison skipped would make it say "same".
func TestSameDataIsDeepEqual(t *testing.T) {
	var outs []events.Event
	for _, seed := range seeds(t)[:2] {
		e, err := New(Config{})
		if err != nil {
			t.Fatal(err)
		}
		in := shuffleWithin(seed, genTraffic(seed, 40, 30), 20*hour)
		for i, ev := range in {
			if outs, err = e.Apply(ev, int64(i), outs); err != nil {
				t.Fatal(err)
			}
		}
	}
	types := map[events.Type]int{}
	check := func(a, b events.Payload, what string) {
		t.Helper()
		if got, want := sameData(a, b), reflect.DeepEqual(a, b); got != want {
			t.Fatalf("%s: sameData %v, DeepEqual %v:\n%#v\n%#v", what, got, want, a, b)
		}
	}
	for i, a := range outs {
		types[a.Type]++
		check(a.Data, a.Data, "itself")
		b, err := events.Encode(nil, a)
		if err != nil {
			t.Fatal(err)
		}
		c, err := events.Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		check(a.Data, c.Data, "wire copy")
		for k := 1; k <= 3; k++ {
			check(a.Data, outs[(i*7+k)%len(outs)].Data, "another output")
		}
		if types[a.Type] > 50 {
			continue
		}
		for _, m := range mutations(c.Data) {
			check(a.Data, m, "one field changed")
		}
	}
	for _, typ := range []events.Type{events.TypeCharge, events.TypeMessageDelivered, events.TypeMessageDispatched,
		events.TypeConversationOpened, events.TypeWindowOpened, events.TypeWindowExpired} {
		if types[typ] == 0 {
			t.Errorf("the traffic gave no %s output to compare", typ)
		}
	}
}

// mutations returns copies of the payload p (a pointer to a struct) with one field changed each.
func mutations(p events.Payload) []events.Payload {
	var out []events.Payload
	v := reflect.ValueOf(p).Elem()
	var walk func(path []int, t reflect.Type)
	walk = func(path []int, t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			at := append(append([]int(nil), path...), i)
			if f.Anonymous && f.Type.Kind() == reflect.Struct {
				walk(at, f.Type)
				continue
			}
			c := reflect.New(v.Type())
			c.Elem().Set(v)
			fv := c.Elem().FieldByIndex(at)
			switch fv.Kind() {
			case reflect.String, reflect.Int, reflect.Int64, reflect.Int32, reflect.Bool:
				mutate(fv)
			case reflect.Struct: // Verdict
				for j := range fv.NumField() {
					c2 := reflect.New(v.Type())
					c2.Elem().Set(v)
					mutate(c2.Elem().FieldByIndex(at).Field(j))
					out = append(out, c2.Interface().(events.Payload))
				}
				continue
			case reflect.Pointer:
				if fv.IsNil() {
					fv.Set(reflect.New(fv.Type().Elem()))
				} else {
					// A copy of the pointed-to value with each of its fields changed, then nil.
					for j := range fv.Elem().NumField() {
						c2 := reflect.New(v.Type())
						c2.Elem().Set(v)
						inner := reflect.New(fv.Type().Elem())
						inner.Elem().Set(fv.Elem())
						mutate(inner.Elem().Field(j))
						c2.Elem().FieldByIndex(at).Set(inner)
						out = append(out, c2.Interface().(events.Payload))
					}
					fv.Set(reflect.Zero(fv.Type()))
				}
			default:
				continue
			}
			out = append(out, c.Interface().(events.Payload))
		}
	}
	walk(nil, v.Type())
	return out
}

func mutate(fv reflect.Value) {
	switch fv.Kind() {
	case reflect.String:
		fv.SetString(fv.String() + "x")
	case reflect.Int, reflect.Int64, reflect.Int32:
		fv.SetInt(fv.Int() + 1)
	case reflect.Bool:
		fv.SetBool(!fv.Bool())
	default:
	}
}

// FuzzSameWAMID: the last-byte shortcut never changes the answer of ==.
func FuzzSameWAMID(f *testing.F) {
	for _, p := range [][2]string{{"", ""}, {"", "a"}, {"wamid.lg1.18q", "wamid.lg1.18q"}, {"wamid.lg1.18q", "wamid.lg1.19q"},
		{"wamid.lg1.18q", "wamid.lg1.18r"}, {"wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZC", "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBJDQjZD"}} {
		f.Add(p[0], p[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		if got, want := sameWAMID(a, b), a == b; got != want {
			t.Fatalf("sameWAMID(%q, %q) = %v", a, b, got)
		}
		if !sameWAMID(a, a) {
			t.Fatalf("sameWAMID(%q, itself) = false", a)
		}
	})
}
