package events

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// fill sets every field of v, recursively, from s and n: strings to s, integers to n (truncated),
// booleans to whether n is odd, pointers to a filled value, slices to two filled elements, maps
// to one entry. A field added to a payload is thus covered without touching this test.
func fill(v reflect.Value, s string, n int64) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(s)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(n)
		if v.Int() != n { // truncated: keep what fits
			v.SetInt(int64(int32(n)))
		}
	case reflect.Bool:
		v.SetBool(n%2 != 0)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), s, n)
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			fill(v.Field(i), s, n)
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			v.SetBytes([]byte(s))
			return
		}
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		fill(v.Index(0), s, n)
		fill(v.Index(1), s+"x", n+1)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(k, s, n)
		fill(e, s, n)
		m.SetMapIndex(k, e)
		v.Set(m)
	default:
		panic("fill: unhandled kind " + v.Kind().String())
	}
}

// checkFastEncoders encodes a zero, a filled and a sample payload of every type with appendPayload
// and compares each with encoding/json and with the generic encoder.
func checkFastEncoders(t *testing.T, s string, n int64) {
	t.Helper()
	for _, sample := range fullPayloads() {
		typ := reflect.TypeOf(sample).Elem()
		zero := reflect.New(typ)
		filled := reflect.New(typ)
		fill(filled.Elem(), s, n)
		for _, p := range []Payload{sample, zero.Interface().(Payload), filled.Interface().(Payload)} {
			want, err := json.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			got, err := appendPayload([]byte("{"), p) // a prefix that looks like an open object
			if err != nil || !bytes.Equal(got[1:], want) {
				t.Fatalf("%T\n got %s (%v)\nwant %s", p, got[1:], err, want)
			}
			gen, err := appendPayloadGeneric(nil, p)
			if err != nil || !bytes.Equal(gen, want) {
				t.Fatalf("%T generic\n got %s (%v)\nwant %s", p, gen, err, want)
			}
		}
	}
}

func TestFastEncodersMatchGeneric(t *testing.T) {
	for _, c := range []struct {
		s string
		n int64
	}{{"", 0}, {"v", 1}, {"a\"<\u2028\xff", -1750030073}, {"é", 1 << 40}} {
		checkFastEncoders(t, c.s, c.n)
	}
	// A nil pointer of a fast type takes the generic path, which writes null.
	if b, err := appendPayload(nil, (*Charge)(nil)); err != nil || string(b) != "null" {
		t.Fatalf("nil charge: %s %v", b, err)
	}
}

// TestAppendJSONStringEveryPosition puts each byte that needs escaping at every offset of a
// string, across the 8-byte words appendJSONString skips, and compares with encoding/json.
func TestAppendJSONStringEveryPosition(t *testing.T) {
	for _, sp := range []string{`"`, `\`, "<", ">", "&", "\x00", "\x1f", "\x7f", "\x80", "\xff", "é", "\u2028", " ", "~"} {
		for pos := 0; pos < 24; pos++ {
			for _, tail := range []int{0, 1, 7, 8, 17} {
				s := string(bytes.Repeat([]byte("a"), pos)) + sp + string(bytes.Repeat([]byte("b"), tail))
				want, _ := json.Marshal(s)
				if got := appendJSONString(nil, s); !bytes.Equal(got, want) {
					t.Fatalf("%q\n got %s\nwant %s", s, got, want)
				}
			}
		}
	}
}
