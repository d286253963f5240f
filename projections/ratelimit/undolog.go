package ratelimit

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/convmeter/convmeter/events"
)

// Undo records are written as logs when a batch has many: the records of one hour of output
// time are spread over undoBuckets lists by their output id, "fx:<hour>:<bucket>", and a batch
// RPUSHes its entries for each as one element. Every output a batch applies leaves a record, so a
// dense replay wrote 0.46 undo fields per record, each a hash insert: without them Redis spent
// 1.3-1.5 CPU-µs per record instead of 1.9; with the lists 1.5-1.6. A push costs one command per
// batch and bucket, whatever the number of entries. (Strings, APPENDed to, cost as little to
// write but took 92 MB for 46 MB of entries after a dense replay of 1M records: Redis grows an
// appended string by doubling it. The lists took 52 MB, the hashes 74 MB.)
//
// A batch with fewer than undoLogMin new records in an hour sets them in the hour's hash,
// "fx:<hour>" (id → record), as before the logs: a push costs about 1.2 µs of Redis and 1.5 of Go
// where a field of one HSET costs 0.5 and 0.1, so the logs only pay when most buckets take many
// entries. (Batches of 100 events were 7% slower with logs alone.) A record that a correction of
// the batch retracts (set again or deleted) always goes to the logs and is deleted from the
// hash, so in an hour the hash's record of an id, when there is one, is its newest: an id is set
// in the hash only as a new output, never while it has a record. Namespaces written before the
// logs hold hashes alone.
//
// The records are read back only for the ids that corrections retract and that the batch did not
// output itself before the correction (a few per batch of 50,000 on the replay traffic): the
// hash and one bucket per id in each hour of the index.
const undoBuckets = 256

// undoLogMin is the fewest new records of one hour that a batch writes as logs rather than as
// hash fields: 4 per bucket.
const undoLogMin = 4 * undoBuckets

// undoBucket is the log an output id's records go to: its FNV-1a hash modulo undoBuckets. Wire
// data: what was written is found only by the same function.
func undoBucket(id string) int {
	h := uint32(2166136261)
	for i := 0; i < len(id); i++ {
		h ^= uint32(id[i])
		h *= 16777619
	}
	return int(h % undoBuckets)
}

// undoLogKeyOf names the log of bucket b of the hour whose hash key is hourKey ("fx:<hour>").
func undoLogKeyOf(hourKey string, b int) string { return hourKey + ":" + strconv.Itoa(b) }

// An element of a log is a sequence of entries; an entry is the id's length (uvarint), the id,
// then the record's length plus one (uvarint) and the record; a length of 0 is a deletion (the
// record was undone). Of an id's entries in one hour the last stands.

// appendUndoEntry appends the entry setting id's record to val, or deleting it when del.
func appendUndoEntry(dst []byte, id, val string, del bool) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(id)))
	dst = append(dst, id...)
	if del {
		return binary.AppendUvarint(dst, 0)
	}
	dst = binary.AppendUvarint(dst, uint64(len(val))+1)
	return append(dst, val...)
}

var errUndoLog = errors.New("truncated undo log")

// scanUndoLog calls fn with each entry of log in order (val is "" when del).
func scanUndoLog(log string, fn func(id, val string, del bool)) error {
	for i := 0; i < len(log); {
		n, w := uvarintAt(log, i)
		if w <= 0 || uint64(len(log)-i-w) < n {
			return fmt.Errorf("%w at byte %d", errUndoLog, i)
		}
		i += w
		id := log[i : i+int(n)]
		i += int(n)
		m, w := uvarintAt(log, i)
		if w <= 0 || (m > 0 && uint64(len(log)-i-w) < m-1) {
			return fmt.Errorf("%w at byte %d", errUndoLog, i)
		}
		i += w
		if m == 0 {
			fn(id, "", true)
			continue
		}
		fn(id, log[i:i+int(m-1)], false)
		i += int(m - 1)
	}
	return nil
}

// uvarintAt decodes the uvarint at s[i:]: the value and its width (<= 0 when s ends first or it
// overflows). The conversion of at most 10 bytes does not escape: no allocation.
func uvarintAt(s string, i int) (uint64, int) {
	return binary.Uvarint([]byte(s[i:min(len(s), i+binary.MaxVarintLen64)]))
}

// undoLookup lists what load asks Redis for the undo records of ids: the buckets their logs are
// in (each once), as the load script's argument list.
func undoLookup(ids []string) (buckets []string) {
	seen := map[int]bool{}
	for _, id := range ids {
		if b := undoBucket(id); !seen[b] {
			seen[b] = true
			buckets = append(buckets, strconv.Itoa(b))
		}
	}
	return buckets
}

// resolveUndo makes the undo records of ids (aligned, "" for none) from the load script's reply
// for them: per indexed hour, oldest first, {the hour's hash values for ids, the elements of the
// hour's logs of buckets}. Within an hour the hash's record stands over the logs'; across hours
// an id's record of the newest hour that has one stands (as the hashes alone were read).
func resolveUndo(raw any, ids, buckets []string) ([]string, error) {
	hours, _ := raw.([]any)
	out := make([]string, len(ids))
	if len(hours) == 0 {
		return out, nil
	}
	pos := make(map[string][]int, len(ids))
	for i, id := range ids {
		pos[id] = append(pos[id], i)
	}
	val, has := make([]string, len(ids)), make([]bool, len(ids))
	for hi, x := range hours {
		h, _ := x.([]any)
		if len(h) != 2 {
			return nil, fmt.Errorf("undo hour %d of the reply has %d parts", hi, len(h))
		}
		hash, _ := h[0].([]any)
		logs, _ := h[1].([]any)
		if len(hash) != len(ids) || len(logs) != len(buckets) {
			return nil, fmt.Errorf("undo hour %d of the reply: %d values for %d ids, %d logs for %d buckets", hi, len(hash), len(ids), len(logs), len(buckets))
		}
		clear(has)
		for j, l := range logs {
			elems, _ := l.([]any)
			for _, x := range elems {
				s, _ := x.(string)
				if err := scanUndoLog(s, func(id, v string, del bool) {
					for _, i := range pos[id] {
						val[i], has[i] = v, !del
					}
				}); err != nil {
					return nil, fmt.Errorf("undo log of bucket %s in hour %d of the reply: %w", buckets[j], hi, err)
				}
			}
		}
		for i, v := range hash {
			if s, ok := v.(string); ok {
				val[i], has[i] = s, true
			}
		}
		for i := range ids {
			if has[i] {
				out[i] = val[i]
			}
		}
	}
	return out, nil
}

// isUndoHour reports whether key is an hour's undo records ("fx:<hour>") in Changes.
func isUndoHour(key string) bool { return len(key) > len(kUndo) && key[:len(kUndo)] == kUndo }

// undoWriter turns a batch's undo records into pushes to their logs. Its buffers are kept
// between batches.
type undoWriter struct {
	bucket [undoBuckets][]byte
}

// appendLogs appends to cmds an RPUSH to each log that the undo records of ch add entries to:
// those of the "fx:<hour>" keys of H, then those of HLog when an hour has at least undoLogMin.
// The entries are copied to arena (returned grown: the commands hold sub-slices of it).
func (w *undoWriter) appendLogs(ch *Changes, pfx string, arena []byte, cmds [][]any) ([]byte, [][]any) {
	hours := map[string]bool{}
	for key := range ch.H {
		if isUndoHour(key) {
			hours[key] = true
		}
	}
	for key, l := range ch.HLog {
		if logsNew(key, l) {
			hours[key] = true
		}
	}
	for hk := range hours {
		for f, op := range ch.H[hk] {
			b := undoBucket(f)
			w.bucket[b] = appendUndoEntry(w.bucket[b], f, op.Val, op.Kind != OpSet)
		}
		if l := ch.HLog[hk]; logsNew(hk, l) {
			for _, fv := range l {
				b := undoBucket(fv.Field)
				w.bucket[b] = appendUndoEntry(w.bucket[b], fv.Field, fv.Val, false)
			}
		}
		for b := range w.bucket {
			e := w.bucket[b]
			if len(e) == 0 {
				continue
			}
			start := len(arena)
			arena = append(arena, e...)
			cmds = append(cmds, []any{"rpush", pfx + undoLogKeyOf(hk, b), arena[start:len(arena):len(arena)]})
			w.bucket[b] = e[:0]
		}
	}
	return arena, cmds
}

// logsNew reports whether the new records l of the HLog key go to logs: key is an hour of undo
// records and l has at least undoLogMin (else they are set in the hour's hash).
func logsNew(key string, l []FieldVal) bool { return isUndoHour(key) && len(l) >= undoLogMin }

// ownOutputs returns the retracted ids (firstRetract: id → the index of the first correction
// retracting it) that evs outputs before that correction, with the cause of that first output.
// Reduce applies the output before the correction and keeps its undo record in memory, so no
// stored record of the id is read, as long as the output is above the stored high-water mark
// (load checks that once it has read the mark). On the replay traffic this leaves a few of the
// 900 ids that a batch of 50,000 retracts.
func ownOutputs(evs []events.Event, firstRetract map[string]int) map[string]events.Cause {
	if len(firstRetract) == 0 {
		return nil
	}
	var own map[string]events.Cause
	for i := range evs {
		e := &evs[i]
		if e.Cause == nil {
			continue
		}
		j, ok := firstRetract[e.ID]
		if !ok || i > j {
			continue
		}
		if _, done := own[e.ID]; done {
			continue
		}
		if own == nil {
			own = map[string]events.Cause{}
		}
		own[e.ID] = *e.Cause
	}
	return own
}

// UndoHour tells the keys of undo records apart (any prefix): the hour's hash "<prefix>fx:<hour>"
// and its logs "<prefix>fx:<hour>:<bucket>". It returns the hour's key (the hash's) and whether
// key is a log; ok is false when key is neither.
func UndoHour(key string) (hourKey string, log, ok bool) {
	i := strings.LastIndex(key, "}:"+kUndo)
	if i < 0 {
		return "", false, false
	}
	h, b, log := strings.Cut(key[i+2+len(kUndo):], ":")
	if !allDigits(h) || log && !allDigits(b) {
		return "", false, false
	}
	return key[:i+2+len(kUndo)+len(h)], log, true
}

// ApplyUndoLog applies the entries of an element of a stored undo log to records (id → record)
// in order: of an id's entries the last stands, a deletion removes the id. An hour's records are
// its logs' elements applied in turn, then its hash's fields set over them (the hash's record of
// an id is its newest). Comparisons of two namespaces read logs through it: where the records
// are depends on how the outputs were batched, what they are does not.
func ApplyUndoLog(log string, records map[string]string) error {
	return scanUndoLog(log, func(id, val string, del bool) {
		if del {
			delete(records, id)
			return
		}
		records[id] = val
	})
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
