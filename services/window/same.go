package window

import (
	"reflect"

	"github.com/convmeter/convmeter/events"
)

// sameContent reports whether two outputs with the same id say the same: a recompute keeps the
// ones that do and retracts and re-emits the others.
func sameContent(a, b events.Event) bool {
	return a.Type == b.Type && a.Time == b.Time && sameData(a.Data, b.Data)
}

// sameData is reflect.DeepEqual(a, b) for the payloads the engine emits, compared field by field
// by the compiler instead of by reflection (which was a fifth of a recompute); any other payload
// falls back to reflection.
func sameData(a, b events.Payload) bool {
	switch x := a.(type) {
	case *events.Charge:
		return sameAs(x, b)
	case *events.MessageDelivered:
		y, ok := b.(*events.MessageDelivered)
		return ok && eqPtr(x, y, func(x, y *events.MessageDelivered) bool {
			xs, ys := *x, *y
			xs.Meta, ys.Meta, xs.MetaConversation, ys.MetaConversation = nil, nil, nil, nil
			return xs == ys && eqPtr(x.Meta, y.Meta, eqVal) && eqPtr(x.MetaConversation, y.MetaConversation, eqVal)
		})
	case *events.MessageDispatched:
		return sameAs(x, b)
	case *events.ConversationOpened:
		return sameAs(x, b)
	case *events.ConversationClosed:
		return sameAs(x, b)
	case *events.WindowOpened:
		return sameAs(x, b)
	case *events.WindowExpired:
		return sameAs(x, b)
	case *events.PolicyViolation:
		return sameAs(x, b)
	default:
		return reflect.DeepEqual(a, b)
	}
}

// sameAs is sameData for a payload x of a comparable struct type.
func sameAs[T comparable](x *T, b events.Payload) bool {
	y, ok := any(b).(*T)
	return ok && eqPtr(x, y, eqVal)
}

// eqVal compares what two pointers point to.
func eqVal[T comparable](x, y *T) bool { return *x == *y }

// eqPtr is DeepEqual's rule for two pointers of a type: both nil, or both not and eq.
func eqPtr[T any](x, y *T, eq func(x, y *T) bool) bool {
	if x == nil || y == nil {
		return x == y
	}
	return x == y || eq(x, y)
}
