package events

import "testing"

func TestRoundTripSmoke(t *testing.T) {
	e := New(&StatusUpdate{PhoneNumberID: "1", RecipientID: "2", WAMID: "w", Status: StatusDelivered, Timestamp: 5})
	b, err := Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != e.ID || got.Data.(*StatusUpdate).Status != StatusDelivered {
		t.Fatalf("got %+v from %s", got, b)
	}
	t.Logf("%s", b)
}
