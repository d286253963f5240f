package admission

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"sync"

	"github.com/convmeter/convmeter/events"
)

// maxBody bounds a request body.
const maxBody = 1 << 16

var bodyPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// decodeRequest reads an admission request body. The usual shape (one flat object of the known
// keys, strings of printable ASCII without escapes, at as a plain integer) is parsed directly;
// anything else goes to encoding/json over the same bytes and the rest of the body, which
// decides and words every error exactly as before (unknown fields, case-insensitive keys,
// escapes, null, at as a string, a body over the limit).
func decodeRequest(w http.ResponseWriter, r *http.Request) (Request, error) {
	body := http.MaxBytesReader(w, r.Body, maxBody)
	bp := bodyPool.Get().(*[]byte)
	defer bodyPool.Put(bp)
	buf := (*bp)[:0]
	var err error
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		var n int
		n, err = body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil {
			break
		}
	}
	*bp = buf[:0]
	if err == io.EOF {
		if req, ok := parseRequest(buf); ok {
			return req, nil
		}
	}
	var req Request
	dec := json.NewDecoder(io.MultiReader(bytes.NewReader(buf), body))
	dec.DisallowUnknownFields()
	err = dec.Decode(&req)
	return req, err
}

// parseRequest parses b when it has the usual shape (see decodeRequest); ok is false for
// anything else, which encoding/json then decodes.
func parseRequest(b []byte) (req Request, ok bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return req, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return req, true
	}
	for {
		key, j, ok := plainString(b, i)
		if !ok {
			return req, false
		}
		i = skipSpace(b, j)
		if i >= len(b) || b[i] != ':' {
			return req, false
		}
		i = skipSpace(b, i+1)
		if key == "at" {
			at, j, ok := plainInt(b, i)
			if !ok {
				return req, false
			}
			req.At, i = events.UnixTime(at), j
		} else {
			v, j, ok := plainString(b, i)
			if !ok {
				return req, false
			}
			switch key {
			case "phone_number_id":
				req.PhoneNumberID = v
			case "user":
				req.User = v
			case "kind":
				req.Kind = events.MessageKind(v)
			case "category":
				req.Category = events.Category(v)
			default:
				return req, false
			}
			i = j
		}
		i = skipSpace(b, i)
		if i >= len(b) {
			return req, false
		}
		switch b[i] {
		case '}':
			return req, true // what follows the object is not read, as json.Decoder does not
		case ',':
			i = skipSpace(b, i+1)
		default:
			return req, false
		}
	}
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// plainString reads a JSON string at b[i] made of printable ASCII without escapes.
func plainString(b []byte, i int) (string, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return "", i, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return string(b[i+1 : j]), j + 1, true
		case c < 0x20 || c > 0x7e || c == '\\':
			return "", i, false
		}
	}
	return "", i, false
}

// plainInt reads a JSON integer at b[i] of at most 18 digits, without a leading zero unless it
// is 0, ending where a JSON number ends.
func plainInt(b []byte, i int) (int64, int, bool) {
	j := i
	neg := j < len(b) && b[j] == '-'
	if neg {
		j++
	}
	start := j
	var v int64
	for ; j < len(b) && b[j] >= '0' && b[j] <= '9'; j++ {
		v = v*10 + int64(b[j]-'0')
	}
	n := j - start
	if n == 0 || n > 18 || (n > 1 && b[start] == '0') {
		return 0, i, false
	}
	if j < len(b) && (b[j] == '.' || b[j] == 'e' || b[j] == 'E') {
		return 0, i, false
	}
	if neg {
		v = -v
	}
	return v, j, true
}
