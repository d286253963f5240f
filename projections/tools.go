//go:build tools

// This file pins the module's dependencies before code imports them, so `go mod tidy` keeps them.
package projections

import (
	_ "github.com/alicebob/miniredis/v2"
	_ "github.com/convmeter/convmeter/events"
	_ "github.com/redis/go-redis/v9"
	_ "github.com/testcontainers/testcontainers-go/modules/redis"
)
