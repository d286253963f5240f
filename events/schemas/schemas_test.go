package schemas_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/convmeter/convmeter/events"
	"github.com/convmeter/convmeter/events/schemas"
)

func TestTypesCoverTheContract(t *testing.T) {
	var want []string
	for _, ty := range append(append([]events.Type{}, events.InputTypes...), events.OutputTypes...) {
		want = append(want, string(ty))
	}
	slices.Sort(want)
	if got := schemas.Types(); !slices.Equal(got, want) {
		t.Fatalf("schemas for %v\nwire types %v", got, want)
	}
	if _, ok := schemas.Schema("message.status.v1"); !ok {
		t.Fatal("no message.status.v1 schema")
	}
	if _, ok := schemas.Schema("nope.v1"); ok {
		t.Fatal("schema for an unknown type")
	}
}

func TestValidateGoldenFixtures(t *testing.T) {
	paths, _ := filepath.Glob(filepath.Join("..", "testdata", "golden", "*", "*.json"))
	if len(paths) < len(schemas.Types()) {
		t.Fatalf("only %d fixtures", len(paths))
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := schemas.Validate(b); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
}

func TestValidateRejects(t *testing.T) {
	tick := `{"v":1,"id":"x","type":"clock.tick.v1","key":"","time":5,"data":{"partition":1}}`
	if err := schemas.Validate([]byte(tick)); err != nil {
		t.Fatalf("valid tick: %v", err)
	}
	for name, c := range map[string]struct{ rec, want string }{
		"not json":     {`{`, "validate record"},
		"no type":      {`{"v":1}`, "no type"},
		"unknown type": {`{"type":"x.v1"}`, `no schema for type "x.v1"`},
		"bad data":     {strings.Replace(tick, `"partition":1`, `"partition":"1"`, 1), "clock.tick.v1"},
		"time zero":    {strings.Replace(tick, `"time":5`, `"time":0`, 1), "clock.tick.v1"},
	} {
		err := schemas.Validate([]byte(c.rec))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want it to mention %q", name, err, c.want)
		}
	}
	if err := schemas.ValidateAs("message.status.v1", []byte(tick)); err == nil {
		t.Error("a tick validates as a status")
	}
}

// TestValidateEncodedEvents validates what the codec writes for events built the usual way.
func TestValidateEncodedEvents(t *testing.T) {
	evs := []events.Event{
		events.New(&events.StatusUpdate{PhoneNumberID: "1", RecipientID: "2", WAMID: "w", Status: events.StatusRead, Timestamp: 9}),
		events.New(&events.OutboundSend{PhoneNumberID: "1", UserID: "US.2", WAMID: "w", Timestamp: 9, Kind: events.KindTemplate, TemplateCategory: events.CategoryAuthentication}),
		events.NewTick(3, 9),
		{ID: "a/0", Key: "1/2", Time: 9, Cause: &events.Cause{Offset: 4}, Data: &events.Charge{
			Account: events.Account{PhoneNumberID: "1", User: "2"}, Unit: events.UnitMessage, PricingModel: events.ModelPMP,
			Category: events.CategoryMarketing, PricingType: events.PricingRegular, Billable: true, Reason: events.ReasonTemplateDelivered,
			WAMID: "w", Kind: events.KindTemplate, Recipient: "2", DeliveredAt: 9}},
	}
	for _, e := range evs {
		b, err := events.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if err := schemas.Validate(b); err != nil {
			t.Errorf("%s: %v\n%s", e.Type, err, b)
		}
	}
}
