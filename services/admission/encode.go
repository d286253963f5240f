package admission

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
)

var encPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// writeDecision writes d as writeJSON would (json.Encoder: the same bytes, newline included),
// without reflection. Times (events.UnixTime) are plain integers, as their MarshalJSON writes.
func writeDecision(w http.ResponseWriter, d *Decision) {
	bp := encPool.Get().(*[]byte)
	b := appendDecision((*bp)[:0], d)
	b = append(b, '\n')
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	*bp = b[:0]
	encPool.Put(bp)
}

func appendDecision(b []byte, d *Decision) []byte {
	b = append(b, `{"allowed":`...)
	b = strconv.AppendBool(b, d.Allowed)
	if len(d.Refusals) > 0 {
		b = append(b, `,"refusals":[`...)
		for i, r := range d.Refusals {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"reason":`...)
			b = appendString(b, r.Reason)
			if r.ErrorCode != 0 {
				b = append(b, `,"error_code":`...)
				b = strconv.AppendInt(b, int64(r.ErrorCode), 10)
			}
			if r.RetryAt != 0 {
				b = append(b, `,"retry_at":`...)
				b = strconv.AppendInt(b, int64(r.RetryAt), 10)
			}
			if r.Detail != "" {
				b = append(b, `,"detail":`...)
				b = appendString(b, r.Detail)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"at":`...)
	b = strconv.AppendInt(b, int64(d.At), 10)
	b = append(b, `,"pricing_model":`...)
	b = appendString(b, string(d.PricingModel))
	b = append(b, `,"category":`...)
	b = appendString(b, string(d.Category))
	b = appendOptString(b, `,"price_category":`, string(d.PriceCategory))
	b = appendOptString(b, `,"pricing_type":`, string(d.PricingType))
	b = append(b, `,"charged":`...)
	b = strconv.AppendBool(b, d.Charged)
	b = append(b, `,"opens_conversation":`...)
	b = strconv.AppendBool(b, d.OpensConversation)
	b = appendOptString(b, `,"conversation_category":`, string(d.ConversationCategory))
	b = appendOptString(b, `,"covered_by":`, d.CoveredBy)
	b = append(b, `,"opens_fep":`...)
	b = strconv.AppendBool(b, d.OpensFEP)
	b = append(b, `,"why":`...)
	b = appendString(b, d.Why)

	b = append(b, `,"service_window":{"open":`...)
	b = strconv.AppendBool(b, d.ServiceWindow.Open)
	if d.ServiceWindow.ExpiresAt != 0 {
		b = append(b, `,"expires_at":`...)
		b = strconv.AppendInt(b, int64(d.ServiceWindow.ExpiresAt), 10)
	}
	b = append(b, `,"fep_open":`...)
	b = strconv.AppendBool(b, d.ServiceWindow.FEPOpen)

	l := &d.Limit
	b = append(b, `},"messaging_limit":{"scope":`...)
	b = appendString(b, string(l.Scope))
	b = append(b, `,"tier":`...)
	b = appendString(b, string(l.Tier))
	if l.Limit != 0 {
		b = append(b, `,"limit":`...)
		b = strconv.AppendInt(b, l.Limit, 10)
	}
	b = append(b, `,"unlimited":`...)
	b = strconv.AppendBool(b, l.Unlimited)
	b = append(b, `,"used":`...)
	b = strconv.AppendInt(b, l.Used, 10)
	b = append(b, `,"used_exact":`...)
	b = strconv.AppendBool(b, l.UsedExact)
	b = append(b, `,"user_counted":`...)
	b = strconv.AppendBool(b, l.UserCounted)
	b = append(b, `,"counts":`...)
	b = strconv.AppendBool(b, l.Counts)

	b = append(b, `},"pair_rate":{"tokens":`...)
	b = strconv.AppendInt(b, d.PairRate.Tokens, 10)
	if d.PairRate.RetryAfter != 0 {
		b = append(b, `,"retry_after_s":`...)
		b = strconv.AppendInt(b, d.PairRate.RetryAfter, 10)
	}
	b = append(b, `},"throughput":{"current":`...)
	b = strconv.AppendInt(b, d.Throughput.Current, 10)
	b = append(b, `,"limit_mps":`...)
	b = strconv.AppendInt(b, int64(d.Throughput.LimitMPS), 10)
	b = append(b, '}')

	if p := d.Price; p != nil {
		b = append(b, `,"price":{"currency":`...)
		b = appendString(b, p.Currency)
		b = append(b, `,"market":`...)
		b = appendString(b, p.Market)
		b = append(b, `,"category":`...)
		b = appendString(b, string(p.Category))
		b = appendOptString(b, `,"card_id":`, p.CardID)
		b = append(b, `,"amount_micros":`...)
		b = strconv.AppendInt(b, p.AmountMicros, 10)
		b = append(b, `,"amount":`...)
		b = appendString(b, p.Amount)
		b = append(b, `,"list_price":`...)
		b = strconv.AppendBool(b, p.List)
		b = append(b, '}')
	}
	b = appendOptString(b, `,"price_error":`, d.PriceError)
	return append(b, '}')
}

func appendOptString(b []byte, key, s string) []byte {
	if s == "" {
		return b
	}
	return appendString(append(b, key...), s)
}

// appendString appends s as encoding/json does (HTML characters escaped): printable ASCII other
// than the quote, the backslash and <, >, & as it is, anything else through encoding/json.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
