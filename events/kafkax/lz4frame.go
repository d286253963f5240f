package kafkax

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/pierrec/lz4/v4"
)

// appendLZ4Decoded appends the content of src, one LZ4 frame (what the records of an LZ4 record
// batch are), to dst. Blocks decode into dst's spare capacity; scratch is reused for those that
// do not fit it, which then decode twice.
//
// It reads the frames every Kafka client writes (any block size, with or without block
// checksums, content size and content checksum) but checks neither checksum: the batch's CRC32C,
// which the reader has checked, already covers every byte. pierrec/lz4's Reader (kafka-go's
// codec) verifies the content checksum and copies each block out of a buffer of its own: on the
// aggregator's input, checksum and copies were as much CPU as decoding the blocks.
func appendLZ4Decoded(dst, src []byte, scratch *[]byte) ([]byte, error) {
	if len(src) < 7 || binary.LittleEndian.Uint32(src) != 0x184D2204 {
		return dst, errors.New("lz4: not an LZ4 frame")
	}
	flg, bd := src[4], src[5]
	if flg>>6 != 1 {
		return dst, fmt.Errorf("lz4: frame version %d", flg>>6)
	}
	if flg&1 != 0 {
		return dst, errors.New("lz4: frames with a dictionary are not supported")
	}
	blockMax := 0
	switch bd >> 4 & 7 {
	case 4:
		blockMax = 64 << 10
	case 5:
		blockMax = 256 << 10
	case 6:
		blockMax = 1 << 20
	case 7:
		blockMax = 4 << 20
	default:
		return dst, fmt.Errorf("lz4: block size code %d", bd>>4&7)
	}
	pos := 6
	if flg&0x08 != 0 { // content size
		if len(src) < pos+9 {
			return dst, errLZ4Short
		}
		if n := binary.LittleEndian.Uint64(src[pos:]); n <= 1<<30 && uint64(cap(dst)-len(dst)) < n {
			dst = append(make([]byte, 0, len(dst)+int(n)), dst...)
		}
		pos += 8
	}
	pos++ // header checksum
	blockSum := flg&0x10 != 0
	for {
		if len(src) < pos+4 {
			return dst, errLZ4Short
		}
		size := binary.LittleEndian.Uint32(src[pos:])
		pos += 4
		if size == 0 { // end mark
			break
		}
		stored := size&(1<<31) != 0
		n := int(size &^ (1 << 31))
		if n > blockMax || len(src)-pos < n {
			return dst, fmt.Errorf("lz4: block of %d bytes (at most %d, %d left)", n, blockMax, len(src)-pos)
		}
		block := src[pos : pos+n]
		pos += n
		if blockSum {
			pos += 4
		}
		if stored {
			dst = append(dst, block...)
			continue
		}
		if spare := cap(dst) - len(dst); spare > 0 {
			// Straight into the spare capacity, which the caller sizes for the content, rather
			// than into scratch and copied out (producers write 4 MB blocks: a batch is one
			// block, far below its maximum). Into a warm buffer that halves the time; into a
			// fresh one, most of the copy's cost moves to the decode's first writes.
			k, err := lz4.UncompressBlock(block, dst[len(dst):len(dst)+min(spare, blockMax)])
			if err == nil {
				dst = dst[:len(dst)+k]
				continue
			}
			// Too little room, or a corrupt block: once more in scratch, which tells them apart.
		}
		if len(*scratch) < blockMax {
			*scratch = make([]byte, blockMax)
		}
		k, err := lz4.UncompressBlock(block, (*scratch)[:blockMax])
		if err != nil {
			return dst, fmt.Errorf("lz4: %w", err)
		}
		dst = append(dst, (*scratch)[:k]...)
	}
	if flg&0x04 != 0 { // content checksum
		pos += 4
	}
	if pos != len(src) {
		return dst, fmt.Errorf("lz4: %d bytes after the frame", len(src)-pos)
	}
	return dst, nil
}

var errLZ4Short = errors.New("lz4: frame ends early")
