//go:build tools

// This file pins the module's dependencies before code imports them, so `go mod tidy` keeps them.
package services

import (
	_ "github.com/ThreeDotsLabs/watermill"
	_ "github.com/alicebob/miniredis/v2"
	_ "github.com/convmeter/convmeter/events"
	_ "github.com/convmeter/convmeter/projections"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/redis/go-redis/v9"
	_ "github.com/segmentio/kafka-go"
	_ "github.com/twmb/franz-go/pkg/kfake"
	_ "golang.org/x/sync/errgroup"
)
