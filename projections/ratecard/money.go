package ratecard

import (
	"fmt"
	"strconv"
	"strings"
)

// Micros is an amount of money in millionths (1e-6) of a currency unit: 0.0099 USD is 9900 Micros.
// Meta's rates have up to four or five decimals, so micro-units hold every published rate exactly,
// and an int64 holds 9.2e12 units of any currency. Money in convmeter is never a float.
//
// Rounding rule: nothing inside convmeter rounds. A ledger amount is a sum of whole rates, each
// exact in Micros. Converting to a currency's minor unit (cents, paisa) is an invoicing step done
// by the reader with Micros.MinorUnits, which rounds half away from zero, once, on the total.
type Micros int64

// microDigits is the number of decimal digits a Micros value carries.
const microDigits = 6

// ParseMicros parses a non-negative or negative decimal string such as "0.0099", "12" or "-1.5"
// into Micros. More than six decimals is an error rather than a silent rounding.
func ParseMicros(s string) (Micros, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty amount")
	}
	neg := false
	switch s[0] {
	case '-':
		neg = true
		s = s[1:]
	case '+':
		s = s[1:]
	}
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" && frac == "" {
		return 0, fmt.Errorf("amount %q has no digits", s)
	}
	if len(frac) > microDigits {
		return 0, fmt.Errorf("amount %q has more than %d decimals", s, microDigits)
	}
	for _, part := range []string{whole, frac} {
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return 0, fmt.Errorf("amount %q is not a decimal number", s)
			}
		}
	}
	var w int64
	if whole != "" {
		v, err := strconv.ParseInt(whole, 10, 64)
		if err != nil || v > (1<<63-1)/1_000_000-1 {
			return 0, fmt.Errorf("amount %q out of range", s)
		}
		w = v
	}
	f := int64(0)
	if frac != "" {
		v, _ := strconv.ParseInt(frac+strings.Repeat("0", microDigits-len(frac)), 10, 64)
		f = v
	}
	m := w*1_000_000 + f
	if neg {
		m = -m
	}
	return Micros(m), nil
}

// String formats m as a decimal with the trailing zeros of the fraction removed: 9900 → "0.0099",
// 2_000_000 → "2".
func (m Micros) String() string {
	neg := m < 0
	u := uint64(m)
	if neg {
		u = uint64(-m)
	}
	whole, frac := u/1_000_000, u%1_000_000
	s := strconv.FormatUint(whole, 10)
	if frac != 0 {
		f := fmt.Sprintf("%06d", frac)
		s += "." + strings.TrimRight(f, "0")
	}
	if neg {
		s = "-" + s
	}
	return s
}

// MinorUnits converts m to a currency's minor unit with the given number of decimals (2 for USD
// cents and INR paisa, 0 for JPY-like currencies), rounding half away from zero.
func (m Micros) MinorUnits(decimals int) int64 {
	if decimals >= microDigits {
		v := int64(m)
		for i := microDigits; i < decimals; i++ {
			v *= 10
		}
		return v
	}
	div := int64(1)
	for i := decimals; i < microDigits; i++ {
		div *= 10
	}
	v := int64(m)
	q, r := v/div, v%div
	if r < 0 {
		r = -r
	}
	if 2*r >= div {
		if v < 0 {
			q--
		} else {
			q++
		}
	}
	return q
}
