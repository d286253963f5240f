package ingest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
)

// SignatureHeader carries Meta's HMAC-SHA256 of the raw body: "sha256=<hex>".
const SignatureHeader = "X-Hub-Signature-256"

// Signature errors, answered with 401.
var (
	ErrSignatureMissing = errors.New("signature missing")
	ErrSignatureInvalid = errors.New("signature does not match")
)

// Verifier checks webhook signatures against one or more app secrets (more than one while a
// secret is being rotated).
type Verifier struct {
	secrets [][]byte
}

// NewVerifier returns a Verifier for secrets; at least one non-empty secret is required.
func NewVerifier(secrets ...string) (*Verifier, error) {
	v := &Verifier{}
	for _, s := range secrets {
		if s != "" {
			v.secrets = append(v.secrets, []byte(s))
		}
	}
	if len(v.secrets) == 0 {
		return nil, errors.New("ingest: no app secret")
	}
	return v, nil
}

// Verify checks header against body. Every secret is tried with a constant-time comparison.
func (v *Verifier) Verify(header string, body []byte) error {
	hexSum, ok := strings.CutPrefix(strings.TrimSpace(header), "sha256=")
	if header == "" || !ok {
		return ErrSignatureMissing
	}
	got, err := hex.DecodeString(hexSum)
	if err != nil || len(got) != sha256.Size {
		return ErrSignatureInvalid
	}
	match := 0
	for _, s := range v.secrets {
		m := hmac.New(sha256.New, s)
		m.Write(body)
		if hmac.Equal(m.Sum(nil), got) {
			match = 1
		}
	}
	if match == 0 {
		return ErrSignatureInvalid
	}
	return nil
}

// Sign returns the header value Meta would send for body under secret (tests, load generators).
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}
