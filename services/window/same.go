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
		y, ok := b.(*events.Charge)
		return ok && eqPtr(x, y, func(x, y *events.Charge) bool { return *x == *y })
	case *events.MessageDelivered:
		y, ok := b.(*events.MessageDelivered)
		return ok && eqPtr(x, y, func(x, y *events.MessageDelivered) bool {
			xs, ys := *x, *y
			xs.Meta, ys.Meta, xs.MetaConversation, ys.MetaConversation = nil, nil, nil, nil
			return xs == ys && eqPtr(x.Meta, y.Meta, eqVal) && eqPtr(x.MetaConversation, y.MetaConversation, eqVal)
		})
	case *events.MessageDispatched:
		y, ok := b.(*events.MessageDispatched)
		return ok && eqPtr(x, y, eqVal)
	case *events.ConversationOpened:
		y, ok := b.(*events.ConversationOpened)
		return ok && eqPtr(x, y, eqVal)
	case *events.ConversationClosed:
		y, ok := b.(*events.ConversationClosed)
		return ok && eqPtr(x, y, eqVal)
	case *events.WindowOpened:
		y, ok := b.(*events.WindowOpened)
		return ok && eqPtr(x, y, eqVal)
	case *events.WindowExpired:
		y, ok := b.(*events.WindowExpired)
		return ok && eqPtr(x, y, eqVal)
	case *events.PolicyViolation:
		y, ok := b.(*events.PolicyViolation)
		return ok && eqPtr(x, y, eqVal)
	default:
		return reflect.DeepEqual(a, b)
	}
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
