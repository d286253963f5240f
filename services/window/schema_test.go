package window

import (
	"testing"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/events/schemas"
)

// Every output the engine writes conforms to the published JSON Schema of its type, so consumers
// in other languages can rely on the schemas.
func TestOutputsMatchSchemas(t *testing.T) {
	in := shuffleWithin(5, genTraffic(5, 60, 12), 20*hour)
	out, _ := run(in)
	seen := map[events.Type]int{}
	for _, ev := range out {
		b, err := events.Marshal(ev)
		if err != nil {
			t.Fatal(err)
		}
		if err := schemas.Validate(b); err != nil {
			t.Fatalf("%s does not match its schema: %v\n%s", ev.Type, err, b)
		}
		seen[ev.Type]++
	}
	for _, typ := range []events.Type{events.TypeWindowOpened, events.TypeWindowExpired, events.TypeConversationOpened, events.TypeConversationClosed,
		events.TypeMessageDispatched, events.TypeMessageDelivered, events.TypeCharge, events.TypePolicyViolation, events.TypeCorrection} {
		if seen[typ] == 0 {
			t.Errorf("the traffic produced no %s; the check proves nothing for it", typ)
		}
	}
}
