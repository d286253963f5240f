package aggregator

import (
	"bytes"
	"strconv"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/events/kafkax"
	"github.com/convmeter/convmeter/services/window"
	"github.com/segmentio/kafka-go"
)

// Processor is the pure step of the aggregator for one input partition: it turns input records,
// in offset order, into output events and dead letters. It does no I/O, so the shell and the
// tests' reference runs share it: equal records give byte-identical results.
type Processor struct {
	Engine    *window.Engine
	Topic     string // input topic, recorded in dead letters
	Partition int32

	scratch []events.Event // one input's outputs: the engine counts cause indexes from 0 in it
}

// Record applies the record m and appends what it derives: engine outputs to out (set-aside
// events with their Original filled with a copy of m's bytes) and, when m does not decode or the
// engine refuses it, one dead letter to dead. typ is the decoded input type, or "" for a dead
// letter. Nothing it returns or keeps points into m's memory, which a reader that reuses its
// buffers (kafkax.PartitionReaderConfig.Reuse) overwrites later.
func (p *Processor) Record(m kafka.Message, out, dead []events.Event) (outs, deads []events.Event, typ events.Type) {
	ev, err := kafkax.FromMessage(m)
	if err != nil {
		return out, append(dead, p.deadLetter(m, events.KindOf(err), err.Error())), ""
	}
	p.scratch, err = p.Engine.Apply(ev, m.Offset, p.scratch[:0])
	if err != nil {
		// The engine refused a well-formed event (an output type on the input topic, an account
		// config it cannot use): invalid input, dead-lettered like undecodable input.
		return out, append(dead, p.deadLetter(m, events.ErrKindInvalid, "engine: "+err.Error())), ev.Type
	}
	for i := range p.scratch {
		if sa, ok := p.scratch[i].Data.(*events.EventSetAside); ok {
			sa.Original = bytes.Clone(m.Value)
		}
	}
	out = append(out, p.scratch...)
	clear(p.scratch) // drop references to the events now in out
	return out, dead, ev.Type
}

// deadLetter builds the dead-letter event of m. Its id and cause come from m's position and its
// time is the partition's stream time, so a replay writes the same dead letter again (and the
// shell suppresses it by cause, as it does outputs).
func (p *Processor) deadLetter(m kafka.Message, kind events.ErrorKind, reason string) events.Event {
	var headers map[string]string
	if len(m.Headers) > 0 {
		headers = make(map[string]string, len(m.Headers))
		for _, h := range m.Headers {
			if _, dup := headers[h.Key]; !dup {
				headers[h.Key] = string(h.Value)
			}
		}
	}
	off := strconv.FormatInt(m.Offset, 10)
	original := bytes.Clone(kafkax.TruncateOriginal(m.Value, &headers))
	return events.Event{
		ID:    events.InputID(string(events.TypeDeadLetter), p.Topic, strconv.Itoa(int(p.Partition)), off),
		Type:  events.TypeDeadLetter,
		Key:   string(m.Key),
		Time:  events.UnixTime(p.Engine.StreamTime()),
		Cause: &events.Cause{Partition: p.Partition, Offset: m.Offset},
		Data: &events.DeadLetter{
			Reason: reason, ErrorKind: string(kind), Topic: p.Topic, Partition: p.Partition, Offset: m.Offset,
			Key: bytes.Clone(m.Key), Headers: headers, Original: original,
		},
	}
}

// suppress drops, in place, the events whose cause is not after last (outputs a previous run
// already wrote). A nil last keeps everything. Events come in cause order, so once one is after
// last, all that follow are too.
func suppress(evs []events.Event, last *events.Cause) (kept []events.Event, dropped int) {
	if last == nil {
		return evs, 0
	}
	for i := range evs {
		if c := evs[i].Cause; c != nil && c.After(*last) {
			return evs[i:], i
		}
	}
	return evs[:0], len(evs)
}
