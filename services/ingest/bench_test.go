package ingest

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
)

// statusesBody builds a "messages" webhook with n delivered statuses with pricing and conversation.
func statusesBody(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"106540352242922"},"statuses":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		s := strconv.Itoa(i)
		b.WriteString(`{"id":"wamid.B` + s + `","status":"delivered","timestamp":"175200` + strconv.Itoa(1000+i%9000) + `","recipient_id":"55119` + s + `","conversation":{"id":"c` + s + `","origin":{"type":"utility"}},"pricing":{"billable":true,"pricing_model":"PMP","type":"regular","category":"utility"}}`)
	}
	b.WriteString(`]}}]}]}`)
	return b.Bytes()
}

// BenchmarkNormalize100 normalises a webhook of 100 statuses; events/s is per core.
func BenchmarkNormalize100(b *testing.B) { benchNormalize(b, 100) }

// BenchmarkNormalize1 normalises a webhook of one status, the shape Meta sends most (and what a
// webhook export for audit is mostly made of); events/s is per core.
func BenchmarkNormalize1(b *testing.B) { benchNormalize(b, 1) }

func benchNormalize(b *testing.B, n int) {
	body := statusesBody(n)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		res, err := Normalize(body)
		if err != nil || len(res.Events) != n {
			b.Fatalf("%v %d", err, len(res.Events))
		}
	}
	b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "events/s")
}

// BenchmarkVerify checks the signature of a 100-status body.
func BenchmarkVerify(b *testing.B) {
	body := statusesBody(100)
	v, _ := NewVerifier("old", "new")
	sig := Sign("new", body)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if err := v.Verify(sig, body); err != nil {
			b.Fatal(err)
		}
	}
}

type discardPublisher struct{}

func (discardPublisher) Publish(string, ...*message.Message) error { return nil }
func (discardPublisher) Close() error                              { return nil }

// BenchmarkHandler100 is the whole server path of a 100-status request (signature, normalise,
// router, middleware, event encoding) with a publisher that discards: the CPU ingest itself needs
// per event, Kafka and the network excluded.
func BenchmarkHandler100(b *testing.B) {
	srv, err := New(Config{VerifyToken: "t", AppSecrets: []string{testSecret}, Partitions: 12}, discardPublisher{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = srv.Run(ctx) }()
	<-srv.Running()
	h := srv.Handler()
	body := statusesBody(100)
	sig := Sign(testSecret, body)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest(http.MethodPost, "/webhook", bytes.NewReader(body))
			req.Header.Set(SignatureHeader, sig)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != http.StatusOK {
				b.Fatalf("%d %s", w.Code, w.Body)
			}
		}
	})
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "events/s")
}
