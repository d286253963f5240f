package kafkax

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// PartitionReader reads one partition of a topic from a given offset, without a consumer group.
// It does what a kafka-go Reader with a Partition does, for a loop whose cost per record matters:
// a goroutine fetches ahead (fetch requests of its own to the partition's leader) and decodes each
// response's record batches in one pass, the records' keys, values and headers pointing into one
// buffer per response instead of a few allocations per record and field.
//
// Like kafka-go's Reader it retries on its own what a retry can fix: lost connections, a leader
// that moved (it asks for the leader again), and an offset that is before the partition's first
// (records deleted by retention: it logs and skips to the first offset, as kafka-go does). Other
// errors from the broker are returned by FetchMessage.
type PartitionReader struct {
	cfg PartitionReaderConfig

	ch     chan fetched
	cur    []kafka.Message
	held   *respMem      // what cur points into, with Reuse
	free   chan *respMem // memory the caller is done with, back to the fetcher
	hw     int64         // high watermark of the response the last record returned came from
	next   int64         // offset after the last record returned
	err    error
	cancel context.CancelFunc
	done   chan struct{}
	once   sync.Once
}

// PartitionReaderConfig configures NewPartitionReader. Zero values take the defaults noted.
type PartitionReaderConfig struct {
	Brokers   []string
	Topic     string
	Partition int
	// MaxBytes bounds one fetch response (the records of the partition it carries, as stored:
	// compressed batches count compressed); default 1 MiB. A record batch larger than this is
	// still returned whole (KIP-74).
	MaxBytes int
	// MaxWait bounds how long the broker holds a fetch while the partition has nothing new;
	// default 250ms.
	MaxWait time.Duration
	// Prefetch is how many decoded fetch responses may wait for FetchMessage; default 4.
	Prefetch int
	// BackoffMin and BackoffMax bound the wait before a retry; defaults 50ms and 1s.
	BackoffMin, BackoffMax time.Duration
	// ErrorLogger gets what the reader retries on its own (as kafka-go's ErrorLogger).
	ErrorLogger kafka.Logger
	// Reuse makes the reader reuse the memory of the records it returned rather than allocate
	// it afresh for every fetch response: the records FetchMessages returns (the slice, and each
	// record's key, value and headers) are valid only until the next call to FetchMessages or
	// FetchMessage. A caller that keeps any of it longer must copy it, so FetchInto and
	// FetchBatch, which keep records across calls, must not read from such a reader. For a
	// loop that is done with a call's records when it asks for more, such as a replay.
	Reuse bool
}

type fetched struct {
	msgs []kafka.Message
	mem  *respMem // what msgs point into, with Reuse
	err  error
}

// respMem is the memory the records of one fetch response point into: the response as read, the
// buffer its compressed batches were decompressed into one after another, and the slabs of
// records and headers. With Reuse the reader hands it back to the fetcher when the caller is done
// with the records, and the fetcher fills it again. A buffer that runs out of room mid-response
// is replaced by one at least twice as large (the records before keep the old one alive), so
// after a response or two each is large enough for any.
type respMem struct {
	resp    []byte
	buf     []byte // decompressed batches; len is what this response used
	msgs    []kafka.Message
	headers []kafka.Header // the slab headers are appended to (len unused: decodeRecords tracks it)
}

// reset makes all of m free for the next response.
func (m *respMem) reset() { m.buf = m.buf[:0] }

// grown returns a capacity for a buffer that must hold need where cap was too small: a quarter
// more than need (the next response's may be a little larger), and at least twice cap, so that
// reuse settles after a replacement or two.
func grown(cap, need int) int { return max(need+need/4, 2*cap) }

// fit returns *b at length n, first replacing it (in *b) with a larger one when it is too small.
func fit[T any](b *[]T, n int) []T {
	if cap(*b) < n {
		*b = make([]T, n, grown(cap(*b), n))
	}
	return (*b)[:n]
}

// out returns an empty buffer with room for at least size bytes for a batch to be decompressed
// into; use records how much of it the batch took. whole is what a response's batches are
// expected to take in all: a buffer that must be replaced gets room for that at least, so that
// memory new to the reader takes one allocation rather than a few doublings.
func (m *respMem) out(size, whole int) []byte {
	if m == nil {
		return make([]byte, 0, size)
	}
	if cap(m.buf)-len(m.buf) < size {
		m.buf = make([]byte, 0, max(grown(cap(m.buf), size), whole))
	}
	return m.buf[len(m.buf):len(m.buf)]
}

// use marks b, a buffer from out as decompression left it, as taken. If the batch outgrew it,
// decompression moved it to memory of its own; the next response's estimate grows the buffer.
func (m *respMem) use(b []byte) {
	if m == nil {
		return
	}
	if rest := m.buf[len(m.buf):cap(m.buf)]; cap(b) > 0 && cap(rest) > 0 && &b[:1][0] == &rest[:1][0] { // in place
		m.buf = m.buf[:len(m.buf)+len(b)]
	}
}

// headerSlab returns an empty slab with room for at least n headers.
func (m *respMem) headerSlab(n int) []kafka.Header {
	if m == nil {
		return make([]kafka.Header, 0, n)
	}
	m.headers = make([]kafka.Header, 0, grown(cap(m.headers), n))
	return m.headers
}

// ErrReaderClosed is returned by FetchMessage once the reader is closed.
var ErrReaderClosed = errors.New("kafkax: partition reader closed")

// NewPartitionReader starts reading cfg.Partition of cfg.Topic at offset (kafka.FirstOffset for
// the partition's first record, kafka.LastOffset for its end). Close stops it.
func NewPartitionReader(cfg PartitionReaderConfig, offset int64) (*PartitionReader, error) {
	if len(cfg.Brokers) == 0 {
		return nil, fmt.Errorf("new partition reader of %s/%d: %w", cfg.Topic, cfg.Partition, ErrNoBrokers)
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 1 << 20
	}
	if cfg.MaxWait <= 0 {
		cfg.MaxWait = 250 * time.Millisecond
	}
	if cfg.Prefetch <= 0 {
		cfg.Prefetch = 4
	}
	if cfg.BackoffMin <= 0 {
		cfg.BackoffMin = 50 * time.Millisecond
	}
	if cfg.BackoffMax <= 0 {
		cfg.BackoffMax = time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &PartitionReader{cfg: cfg, ch: make(chan fetched, cfg.Prefetch), cancel: cancel, done: make(chan struct{})}
	f := &fetcher{cfg: cfg, client: &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: 10 * time.Second},
		keys: map[string]string{}}
	if cfg.Reuse {
		// The responses waiting, the one in hand and the one being fetched hold memory.
		r.free = make(chan *respMem, cfg.Prefetch+2)
		f.free = r.free
	}
	go f.run(ctx, offset, r.ch, r.done)
	return r, nil
}

// FetchMessage returns the next record. It implements Fetcher, so FetchBatch and FetchInto read
// from a PartitionReader. An error from the broker is returned once; the reader is then stopped.
func (r *PartitionReader) FetchMessage(ctx context.Context) (kafka.Message, error) {
	msgs, err := r.FetchMessages(ctx, 1)
	if err != nil {
		return kafka.Message{}, err
	}
	return msgs[0], nil
}

// FetchMessages returns the next records, at least one and at most max, waiting for one if none
// is in hand: the records of one fetch response, in offset order. The slice stays valid (the
// reader never writes to it again), unless the reader was made with Reuse.
func (r *PartitionReader) FetchMessages(ctx context.Context, max int) ([]kafka.Message, error) {
	if len(r.cur) == 0 && r.held != nil {
		select {
		case r.free <- r.held:
		default: // the fetcher has memory enough
		}
		r.held = nil
	}
	for len(r.cur) == 0 {
		if r.err != nil {
			return nil, r.err
		}
		select {
		case f, ok := <-r.ch:
			switch {
			case !ok:
				r.err = ErrReaderClosed
			case f.err != nil:
				r.err = f.err
				return nil, f.err
			default:
				r.cur, r.held = f.msgs, f.mem
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	n := min(max, len(r.cur))
	msgs := r.cur[:n:n]
	r.cur = r.cur[n:]
	last := msgs[n-1]
	r.hw, r.next = last.HighWaterMark, last.Offset+1
	return msgs, nil
}

// CaughtUp reports that the reader has returned every record the partition held when it was last
// fetched from (the records below that response's high watermark), and holds no other.
func (r *PartitionReader) CaughtUp() bool {
	return len(r.cur) == 0 && len(r.ch) == 0 && r.next > 0 && r.next >= r.hw
}

// Close stops the reader and waits for its goroutine.
func (r *PartitionReader) Close() error {
	r.once.Do(func() {
		r.cancel()
		<-r.done
	})
	return nil
}

// fetcher is the reader's goroutine: the connection to the leader and the decoding state.
type fetcher struct {
	cfg      PartitionReaderConfig
	client   *kafka.Client
	conn     net.Conn
	req      []byte
	corr     int32
	keys     map[string]string // header keys seen, so each record's need not allocate
	last     []string          // the previous record's header keys, by position
	unzipped int               // decompressed size of the last compressed batch
	// unzippedResp is the most a response's batches took decompressed so far.
	unzippedResp int
	lz4Block     []byte // an LZ4 block that does not fit the batch's buffer, decoded
	// With Reuse: memory the reader is done with, and the memory of the response being fetched
	// (kept for the next fetch when this one returns no records).
	free chan *respMem
	mem  *respMem
}

// takeMem returns the memory for the next response's records: nil without Reuse (fresh
// allocations), else memory handed back by the reader, else new.
func (f *fetcher) takeMem() *respMem {
	if f.free == nil {
		return nil
	}
	if f.mem == nil {
		select {
		case f.mem = <-f.free:
		default:
			f.mem = &respMem{}
		}
	}
	f.mem.reset()
	return f.mem
}

func (f *fetcher) logf(format string, args ...any) {
	if f.cfg.ErrorLogger != nil {
		f.cfg.ErrorLogger.Printf(format, args...)
	}
}

func (f *fetcher) run(ctx context.Context, offset int64, ch chan<- fetched, done chan<- struct{}) {
	defer close(done)
	defer close(ch)
	defer func() {
		if f.conn != nil {
			_ = f.conn.Close()
		}
	}()
	where := func() string { return f.cfg.Topic + "/" + strconv.Itoa(f.cfg.Partition) }
	errs := 0
	for {
		if errs > 0 {
			d := min(f.cfg.BackoffMin<<min(errs-1, 16), f.cfg.BackoffMax)
			select {
			case <-ctx.Done():
				return
			case <-time.After(d):
			}
		}
		if ctx.Err() != nil {
			return
		}
		if offset < 0 {
			first, last, err := f.bounds(ctx)
			if err != nil {
				f.logf("partition reader %s: offsets: %v", where(), err)
				errs++
				continue
			}
			if offset == kafka.LastOffset {
				offset = last
			} else {
				offset = first
			}
		}
		if f.conn == nil {
			if err := f.dial(ctx); err != nil {
				f.logf("partition reader %s: connect to the leader: %v", where(), err)
				errs++
				continue
			}
		}
		msgs, next, err := f.fetch(ctx, offset)
		var kerr kafka.Error
		switch {
		case err == nil:
			errs = 0
			offset = next
			if len(msgs) > 0 {
				mem := f.mem
				f.mem = nil // the reader's until it hands it back
				select {
				case ch <- fetched{msgs: msgs, mem: mem}:
				case <-ctx.Done():
					return
				}
			}
		case errors.As(err, &kerr) && kerr == kafka.OffsetOutOfRange:
			first, last, berr := f.bounds(ctx)
			switch {
			case berr != nil:
				f.logf("partition reader %s: offset %d out of range, and reading the offsets: %v", where(), offset, berr)
				errs++
			case offset < first:
				f.logf("partition reader %s is reading before the first offset, skipping from offset %d to %d (%d records)", where(), offset, first, first-offset)
				offset, errs = first, 0
			case offset < last:
				errs = 0
			default:
				f.logf("partition reader %s is reading past the last offset %d at offset %d", where(), last, offset)
				errs++
			}
		case errors.As(err, &kerr) && (kerr.Temporary() || kerr == kafka.UnknownTopicOrPartition || kerr == kafka.NotLeaderForPartition):
			// A leader that moved or is being elected: ask for the leader again.
			f.logf("partition reader %s at offset %d: %v", where(), offset, err)
			f.closeConn()
			errs++
		case errors.As(err, &kerr):
			select {
			case ch <- fetched{err: fmt.Errorf("read %s at offset %d: %w", where(), offset, err)}:
			case <-ctx.Done():
			}
			return
		default:
			// The connection or a response that does not parse: start over on a new connection.
			if ctx.Err() != nil {
				return
			}
			f.logf("partition reader %s at offset %d: %v", where(), offset, err)
			f.closeConn()
			errs++
		}
	}
}

func (f *fetcher) closeConn() {
	if f.conn != nil {
		_ = f.conn.Close()
		f.conn = nil
	}
}

// bounds returns the partition's first and end offsets.
func (f *fetcher) bounds(ctx context.Context) (first, last int64, err error) {
	p := f.cfg.Partition
	res, err := f.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
		f.cfg.Topic: {kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p)},
	}})
	if err != nil {
		return 0, 0, err
	}
	for _, po := range res.Topics[f.cfg.Topic] {
		if po.Partition == p {
			if po.Error != nil {
				return 0, 0, po.Error
			}
			return po.FirstOffset, po.LastOffset, nil
		}
	}
	return 0, 0, fmt.Errorf("no offsets returned for %s/%d", f.cfg.Topic, p)
}

// dial connects to the partition's leader.
func (f *fetcher) dial(ctx context.Context) error {
	meta, err := f.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{f.cfg.Topic}})
	if err != nil {
		return err
	}
	for _, t := range meta.Topics {
		if t.Name != f.cfg.Topic {
			continue
		}
		if t.Error != nil {
			return t.Error
		}
		for _, p := range t.Partitions {
			if p.ID != f.cfg.Partition {
				continue
			}
			if p.Error != nil {
				return p.Error
			}
			if p.Leader.Host == "" {
				return kafka.LeaderNotAvailable
			}
			d := net.Dialer{Timeout: 10 * time.Second}
			conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(p.Leader.Host, strconv.Itoa(p.Leader.Port)))
			if err != nil {
				return err
			}
			f.conn = conn
			return nil
		}
	}
	return kafka.UnknownTopicOrPartition
}

// Fetch request and response version 4: record batches (message format v2), isolation level,
// no fetch sessions. Every broker since Kafka 0.11 serves it, Kafka 4 included.
const (
	fetchAPIKey     = 1
	fetchAPIVersion = 4
	clientID        = "convmeter"
)

// fetch sends one fetch request at offset and decodes the response: the records at and after
// offset, and the offset to fetch next.
func (f *fetcher) fetch(ctx context.Context, offset int64) ([]kafka.Message, int64, error) {
	f.corr++
	b := f.req[:0]
	b = binary.BigEndian.AppendUint32(b, 0) // size, set below
	b = binary.BigEndian.AppendUint16(b, fetchAPIKey)
	b = binary.BigEndian.AppendUint16(b, fetchAPIVersion)
	b = binary.BigEndian.AppendUint32(b, uint32(f.corr))
	b = appendString(b, clientID)
	b = binary.BigEndian.AppendUint32(b, 0xffffffff) // replica id -1: a consumer
	b = binary.BigEndian.AppendUint32(b, uint32(f.cfg.MaxWait.Milliseconds()))
	b = binary.BigEndian.AppendUint32(b, 1) // min bytes
	b = binary.BigEndian.AppendUint32(b, uint32(f.cfg.MaxBytes))
	b = append(b, 0)                        // read uncommitted, as kafka-go's Reader by default
	b = binary.BigEndian.AppendUint32(b, 1) // one topic
	b = appendString(b, f.cfg.Topic)
	b = binary.BigEndian.AppendUint32(b, 1) // one partition
	b = binary.BigEndian.AppendUint32(b, uint32(f.cfg.Partition))
	b = binary.BigEndian.AppendUint64(b, uint64(offset))
	b = binary.BigEndian.AppendUint32(b, uint32(f.cfg.MaxBytes))
	binary.BigEndian.PutUint32(b, uint32(len(b)-4))
	f.req = b

	if err := f.conn.SetDeadline(time.Now().Add(f.cfg.MaxWait + 30*time.Second)); err != nil {
		return nil, offset, err
	}
	// Close must not wait for a held fetch or a broker that does not answer.
	conn := f.conn
	defer context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })()
	if _, err := f.conn.Write(b); err != nil {
		return nil, offset, fmt.Errorf("send fetch: %w", err)
	}
	var size [4]byte
	if _, err := io.ReadFull(f.conn, size[:]); err != nil {
		return nil, offset, fmt.Errorf("read fetch response: %w", err)
	}
	n := binary.BigEndian.Uint32(size[:])
	if n < 8 || n > 1<<30 {
		return nil, offset, fmt.Errorf("fetch response of %d bytes", n)
	}
	// A new buffer per response, the records returned point into it; with Reuse, one the
	// reader is done with.
	mem := f.takeMem()
	var resp []byte
	if mem == nil {
		resp = make([]byte, n)
	} else {
		resp = fit(&mem.resp, int(n))
	}
	if _, err := io.ReadFull(f.conn, resp); err != nil {
		return nil, offset, fmt.Errorf("read fetch response: %w", err)
	}
	d := decoder{b: resp}
	if corr := d.int32(); corr != f.corr {
		return nil, offset, fmt.Errorf("fetch response for request %d, want %d", corr, f.corr)
	}
	d.int32() // throttle time
	var records []byte
	var hw int64
	found := false
	for range d.int32() {
		topic := d.str()
		for range d.int32() {
			p := d.int32()
			code := d.int16()
			hwm := d.int64()
			d.int64() // last stable offset
			if na := d.int32(); na > 0 {
				d.skip(int(na) * 16) // aborted transactions: read uncommitted ignores them
			}
			recs := d.bytes()
			if d.err != nil {
				return nil, offset, fmt.Errorf("fetch response: %w", d.err)
			}
			if topic != f.cfg.Topic || int(p) != f.cfg.Partition {
				continue
			}
			if code != 0 {
				return nil, offset, kafka.Error(code)
			}
			records, hw, found = recs, hwm, true
		}
	}
	if d.err != nil {
		return nil, offset, fmt.Errorf("fetch response: %w", d.err)
	}
	if !found {
		return nil, offset, fmt.Errorf("fetch response without %s/%d", f.cfg.Topic, f.cfg.Partition)
	}
	return f.decodeBatches(mem, records, offset, hw)
}

// decodeBatches decodes the complete record batches of records (a fetch may end with a partial
// one) and returns the records at and after offset, and the offset after the last batch. The
// records and what they point to go in mem (nil: fresh allocations).
func (f *fetcher) decodeBatches(mem *respMem, records []byte, offset, hw int64) ([]kafka.Message, int64, error) {
	// Count first, to allocate the messages once.
	n := 0
	for rest := records; len(rest) >= 61; {
		l := int(int32(binary.BigEndian.Uint32(rest[8:])))
		if l < 49 || 12+l > len(rest) {
			break
		}
		n += int(int32(binary.BigEndian.Uint32(rest[57:])))
		rest = rest[12+l:]
	}
	var msgs []kafka.Message
	var headers []kafka.Header
	if mem == nil {
		msgs = make([]kafka.Message, 0, n)
	} else {
		msgs, headers = fit(&mem.msgs, n)[:0], mem.headers[:0]
	}
	unzipped := 0 // decompressed bytes of this response
	next := offset
	for len(records) >= 61 {
		base := int64(binary.BigEndian.Uint64(records))
		l := int(int32(binary.BigEndian.Uint32(records[8:])))
		if l < 49 || 12+l > len(records) {
			break // the partial batch the fetch ends with
		}
		batch := records[:12+l]
		records = records[12+l:]
		if magic := batch[16]; magic != 2 {
			return nil, offset, fmt.Errorf("record batch at offset %d: message format v%d not supported", base, magic)
		}
		if crc := binary.BigEndian.Uint32(batch[17:]); crc != crc32.Checksum(batch[21:], crc32c) {
			return nil, offset, fmt.Errorf("record batch at offset %d: CRC mismatch", base)
		}
		attrs := binary.BigEndian.Uint16(batch[21:])
		lastDelta := int64(int32(binary.BigEndian.Uint32(batch[23:])))
		firstTS := int64(binary.BigEndian.Uint64(batch[27:]))
		count := int(int32(binary.BigEndian.Uint32(batch[57:])))
		n -= count // now the records of the response's later batches
		if end := base + lastDelta + 1; end > next {
			next = end
		}
		if attrs&0x20 != 0 || base+lastDelta < offset {
			continue // a control batch (transaction markers), or records before offset
		}
		body := batch[61:]
		if c := kafka.Compression(attrs & 7); c != 0 {
			codec := c.Codec()
			if codec == nil {
				return nil, offset, fmt.Errorf("record batch at offset %d: unknown compression %d", base, c)
			}
			// Into a buffer the records will point into (new, or the rest of mem's), with room
			// for the last batch's records and a little more (producers fill batches to about the
			// same size), so that it rarely grows: growing copies it, and copying all records
			// cost as much as decompressing LZ4.
			out := mem.out(f.unzipped+f.unzipped/8+4096, f.unzippedResp+f.unzippedResp/8)
			var err error
			if c == kafka.Lz4 {
				out, err = appendLZ4Decoded(out, body, &f.lz4Block)
			} else {
				out, err = decompress(out, codec.NewReader(bytes.NewReader(body)))
			}
			if err != nil {
				return nil, offset, fmt.Errorf("record batch at offset %d: %s: %w", base, codec.Name(), err)
			}
			mem.use(out)
			f.unzipped = len(out)
			unzipped += len(out)
			f.unzippedResp = max(f.unzippedResp, unzipped)
			body = out
		}
		var err error
		if msgs, headers, err = f.decodeRecords(mem, msgs, headers, body, count, n, base, firstTS, offset, hw); err != nil {
			return nil, offset, fmt.Errorf("record batch at offset %d: %w", base, err)
		}
	}
	return msgs, next, nil
}

func decompress(dst []byte, r io.ReadCloser) ([]byte, error) {
	defer r.Close()
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, 0)[:len(dst)]
		}
		n, err := r.Read(dst[len(dst):cap(dst)])
		dst = dst[:len(dst)+n]
		if errors.Is(err, io.EOF) {
			return dst, nil
		}
		if err != nil {
			return dst, err
		}
	}
}

// decodeRecords appends the count records of body at and after offset to msgs; their headers go
// to the headers slab. When that is full, the new one from mem has room for the headers of the
// records left in this batch and of the after records of the response's later batches (the
// current record's count and one more, each), so that a response takes one slab and, with Reuse,
// the next responses none.
func (f *fetcher) decodeRecords(mem *respMem, msgs []kafka.Message, headers []kafka.Header, body []byte, count, after int, base, firstTS, offset, hw int64) ([]kafka.Message, []kafka.Header, error) {
	d := decoder{b: body}
	for i := range count {
		l := d.varint()
		if d.err != nil || l < 0 || int(l) > len(d.b) {
			return msgs, headers, errors.New("bad record length")
		}
		r := decoder{b: d.b[:l]}
		d.b = d.b[l:]
		r.skip(1) // attributes
		ts := firstTS + r.varint()
		off := base + r.varint()
		key := r.nullable()
		value := r.nullable()
		nh := int(r.varint())
		var hs []kafka.Header
		if nh > 0 {
			if cap(headers)-len(headers) < nh {
				headers = mem.headerSlab((nh + 1) * (count - i + after))
			}
			start := len(headers)
			for range nh {
				k := r.nullable()
				v := r.nullable()
				headers = append(headers, kafka.Header{Key: f.key(len(headers)-start, k), Value: v})
			}
			hs = headers[start:len(headers):len(headers)]
		}
		if r.err != nil {
			return msgs, headers, fmt.Errorf("record at offset %d: %w", off, r.err)
		}
		if off < offset {
			continue
		}
		msgs = append(msgs, kafka.Message{
			Topic: f.cfg.Topic, Partition: f.cfg.Partition, Offset: off, HighWaterMark: hw,
			Key: key, Value: value, Headers: hs, Time: time.UnixMilli(ts),
		})
	}
	return msgs, headers, nil
}

// key returns b, the key of a record's i-th header, as a string: the same string for every
// record with the same header key, found without a map when the key is the previous record's
// i-th (records of one producer list the same headers in the same order).
func (f *fetcher) key(i int, b []byte) string {
	if i < len(f.last) && f.last[i] == string(b) {
		return f.last[i]
	}
	s, ok := f.keys[string(b)]
	if !ok {
		s = string(b)
		if len(f.keys) < 256 {
			f.keys[s] = s
		}
	}
	if i < len(f.last) {
		f.last[i] = s
	} else if i == len(f.last) && i < 32 {
		f.last = append(f.last, s)
	}
	return s
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// decoder reads big-endian fields and varints; the first error sticks and zero values follow.
type decoder struct {
	b   []byte
	err error
}

var errShort = errors.New("short buffer")

func (d *decoder) take(n int) []byte {
	if d.err != nil || n < 0 || n > len(d.b) {
		if d.err == nil {
			d.err = errShort
		}
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) skip(n int) { d.take(n) }

func (d *decoder) int16() int16 {
	if v := d.take(2); v != nil {
		return int16(binary.BigEndian.Uint16(v))
	}
	return 0
}

func (d *decoder) int32() int32 {
	if v := d.take(4); v != nil {
		return int32(binary.BigEndian.Uint32(v))
	}
	return 0
}

func (d *decoder) int64() int64 {
	if v := d.take(8); v != nil {
		return int64(binary.BigEndian.Uint64(v))
	}
	return 0
}

func (d *decoder) str() string {
	n := d.int16()
	if n < 0 {
		return ""
	}
	return string(d.take(int(n)))
}

// bytes reads int32-length nullable bytes.
func (d *decoder) bytes() []byte {
	n := d.int32()
	if n < 0 {
		return nil
	}
	return d.take(int(n))
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errShort
		return 0
	}
	d.b = d.b[n:]
	return v
}

// nullable reads varint-length nullable bytes (record keys, values, header keys and values).
func (d *decoder) nullable() []byte {
	n := d.varint()
	if n < 0 {
		return nil
	}
	return d.take(int(n))
}
