package events

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
)

// EnvelopeVersion is the envelope schema version this code writes and the newest it reads.
const EnvelopeVersion = 1

// MaxEventSize bounds one encoded event. Meta's largest webhooks carry 1000 updates; one event
// carries one, so 1 MiB leaves room for any real payload and stops a runaway one.
const MaxEventSize = 1 << 20

// Source is the CloudEvents source of convmeter's events.
const Source = "convmeter"

// Cause is the position of the input that made a derived event: the input partition and offset,
// and the index of this output among the outputs of that input. Causes are totally ordered within
// a partition, which is what lets restarts suppress outputs already written (architecture rule 3).
type Cause struct {
	Partition int32 `json:"partition"`
	Offset    int64 `json:"offset"`
	Index     int32 `json:"index"`
}

// After reports whether c comes strictly after o in the same partition.
func (c Cause) After(o Cause) bool {
	if c.Offset != o.Offset {
		return c.Offset > o.Offset
	}
	return c.Index > o.Index
}

// Event is one decoded envelope.
type Event struct {
	ID    string
	Type  Type
	Key   string
	Time  UnixTime
	Cause *Cause
	Data  Payload
}

// New builds an input event for p, deriving its type, key, time and id from p.
func New(p Payload) Event {
	e := Event{Type: p.EventType(), Data: p}
	switch v := p.(type) {
	case *InboundMessage:
		e.Key = PairKey(v.PhoneNumberID, v.WaID, v.UserID)
		e.Time = v.Timestamp
		e.ID = InputID(string(e.Type), v.PhoneNumberID, v.WAMID)
	case *OutboundSend:
		e.Key = PairKey(v.PhoneNumberID, v.WaID, v.UserID)
		e.Time = v.Timestamp
		e.ID = InputID(string(e.Type), v.PhoneNumberID, v.WAMID)
	case *StatusUpdate:
		e.Key = PairKey(v.PhoneNumberID, v.RecipientID, v.RecipientUserID)
		e.Time = v.Timestamp
		e.ID = InputID(string(e.Type), v.WAMID, string(v.Status), strconv.FormatInt(int64(v.Timestamp), 10), v.RecipientParticipantID)
	case *AccountConfig:
		e.Key = AccountKey(v.PhoneNumberID)
		e.Time = v.EffectiveFrom
		e.ID = InputID(string(e.Type), v.PhoneNumberID, strconv.FormatInt(int64(v.EffectiveFrom), 10), v.WABAID, v.PortfolioID, v.TimeZone, v.Currency, v.MessagingLimitTier)
	case *LimitUpdate:
		e.Key = AccountKey(v.ID)
		e.Time = v.EffectiveFrom
		e.ID = InputID(string(e.Type), v.Scope, v.ID, v.Tier, strconv.FormatInt(int64(v.EffectiveFrom), 10))
	case *VolumeTier:
		e.Key = AccountKey(v.WABAID)
		e.Time = v.TierUpdateTime
		e.ID = InputID(string(e.Type), v.WABAID, string(v.PricingCategory), v.Tier, v.EffectiveMonth, v.Region, strconv.FormatInt(int64(v.TierUpdateTime), 10))
	case *TemplateCategory:
		e.Key = AccountKey(v.WABAID)
		e.Time = v.EffectiveFrom
		e.ID = InputID(string(e.Type), v.WABAID, v.TemplateID, string(v.NewCategory), strconv.FormatInt(int64(v.EffectiveFrom), 10))
	}
	return e
}

// NewTick builds the clock tick for partition p at time t. Its id is deterministic, so a clock that
// restarts and writes the same second again writes the same event.
func NewTick(p int32, t UnixTime) Event {
	return Event{
		ID:   InputID(string(TypeTick), strconv.Itoa(int(p)), strconv.FormatInt(int64(t), 10)),
		Type: TypeTick,
		Time: t,
		Data: &Tick{Partition: p},
	}
}

// InputID derives an input event's id from its natural identity: 32 hex digits of SHA-256 over
// the parts, separated by NUL bytes.
func InputID(parts ...string) string {
	// The parts are usually short: joined in a buffer on the stack and hashed in one call, the
	// id costs one allocation (its string); longer ones go through the streaming hash.
	var buf [256]byte
	n := len(parts) - 1
	for _, p := range parts {
		n += len(p)
	}
	var sum [sha256.Size]byte
	if n <= len(buf) {
		msg := buf[:0]
		for i, p := range parts {
			if i > 0 {
				msg = append(msg, 0)
			}
			msg = append(msg, p...)
		}
		sum = sha256.Sum256(msg)
	} else {
		h := sha256.New()
		for i, p := range parts {
			if i > 0 {
				h.Write([]byte{0})
			}
			h.Write([]byte(p))
		}
		h.Sum(sum[:0])
	}
	var id [32]byte
	hex.Encode(id[:], sum[:16])
	return string(id[:])
}

// DerivedID is the id of the index-th output derived from the input with id inputID.
func DerivedID(inputID string, index int) string {
	return inputID + "/" + strconv.Itoa(index)
}
