package events

import (
	"errors"
	"fmt"
)

// ErrorKind classifies why an event could not be decoded or accepted. Kinds are wire data (they
// appear in dead-letter records) and the list is only appended to.
type ErrorKind string

// Error kinds.
const (
	ErrKindMalformed   ErrorKind = "malformed"    // not JSON, or truncated
	ErrKindFieldType   ErrorKind = "field_type"   // a field has the wrong JSON type
	ErrKindUnknownType ErrorKind = "unknown_type" // the wire name is not one we know
	ErrKindTooLarge    ErrorKind = "too_large"    // over MaxEventSize
	ErrKindInvalid     ErrorKind = "invalid"      // decodes, but a required field is missing or wrong
	ErrKindVersion     ErrorKind = "version"      // envelope version we do not know
)

// Sentinel errors, one per kind, for errors.Is.
var (
	ErrMalformed   = errors.New("malformed event")
	ErrFieldType   = errors.New("wrong field type")
	ErrUnknownType = errors.New("unknown event type")
	ErrTooLarge    = errors.New("event too large")
	ErrInvalid     = errors.New("invalid event")
	ErrVersion     = errors.New("unsupported envelope version")
)

func (k ErrorKind) sentinel() error {
	switch k {
	case ErrKindMalformed:
		return ErrMalformed
	case ErrKindFieldType:
		return ErrFieldType
	case ErrKindUnknownType:
		return ErrUnknownType
	case ErrKindTooLarge:
		return ErrTooLarge
	case ErrKindInvalid:
		return ErrInvalid
	case ErrKindVersion:
		return ErrVersion
	}
	return nil
}

// DecodeError says why bytes could not become an event. errors.Is matches the kind's sentinel.
type DecodeError struct {
	Kind ErrorKind
	Type Type   // the wire name, when it was read
	ID   string // the event id, when it was read
	Err  error
}

func (e *DecodeError) Error() string {
	s := "decode event"
	if e.Type != "" {
		s += " " + truncate(string(e.Type), 80)
	}
	if e.ID != "" {
		s += " " + truncate(e.ID, 80)
	}
	return fmt.Sprintf("%s: %s: %v", s, e.Kind, e.Err)
}

// Unwrap lets errors.Is match both the kind's sentinel and the cause.
func (e *DecodeError) Unwrap() []error { return []error{e.Kind.sentinel(), e.Err} }

// KindOf returns the ErrorKind of err, or "" when err is not a DecodeError.
func KindOf(err error) ErrorKind {
	var de *DecodeError
	if errors.As(err, &de) {
		return de.Kind
	}
	return ""
}

// FieldError names a field that is missing or wrong. Field is a path ("data.pricing.billable"); it
// is empty when the code that found the problem does not know the field (UnixTime.UnmarshalJSON),
// and Decode fills it in.
type FieldError struct {
	Field   string
	Problem string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Problem
	}
	return e.Field + ": " + e.Problem
}
