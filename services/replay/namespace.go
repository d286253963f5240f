package replay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/convmeter/convmeter/projections"
	"github.com/convmeter/convmeter/projections/billing"
	"github.com/convmeter/convmeter/projections/ratecard"
	"github.com/convmeter/convmeter/projections/ratelimit"
)

// Namespace is one set of projections under a Redis key prefix, laid out as `convmeter project`
// lays them out: the billing store under Prefix (keys "<Prefix>billing:…") and the rate-limit
// store under Prefix+"ratelimit:". The live namespace is "convmeter:" by default; replay builds
// into a fresh one beside it.
type Namespace struct {
	Prefix    string
	Book      *ratecard.Book // the rate cards the billing store prices with
	Billing   *billing.Store
	RateLimit *ratelimit.Store
}

// ErrBadPrefix is returned for a key prefix replay cannot use.
var ErrBadPrefix = errors.New("replay: bad key prefix")

// OpenNamespace returns the stores of the namespace prefix. partitions is the partition count of
// the topics (the rate-limit queries merge that many).
func OpenNamespace(rdb redis.UniversalClient, prefix string, book *ratecard.Book, partitions int, log *slog.Logger) (*Namespace, error) {
	if err := checkPrefix(prefix); err != nil {
		return nil, err
	}
	b, err := billing.NewStore(rdb, prefix, book, log)
	if err != nil {
		return nil, err
	}
	rl, err := ratelimit.NewStore(rdb, ratelimit.WithNamespace(prefix+ratelimit.Name+":"), ratelimit.WithPartitions(max(partitions, 1)),
		ratelimit.WithAccountCache(0, nil))
	if err != nil {
		return nil, err
	}
	return &Namespace{Prefix: prefix, Book: book, Billing: b, RateLimit: rl}, nil
}

// checkPrefix refuses a key prefix replay cannot use: empty, or with a hash-tag brace or a SCAN
// glob character (SCAN patterns built from it would match other namespaces' keys).
func checkPrefix(prefix string) error {
	if prefix == "" || strings.ContainsAny(prefix, "{}*?[]\\") {
		return fmt.Errorf("%w %q: must be non-empty, without braces, backslashes or glob characters", ErrBadPrefix, prefix)
	}
	return nil
}

// Projections returns the namespace's projections, billing first.
func (n *Namespace) Projections() []projections.Projection {
	return []projections.Projection{n.Billing, n.RateLimit}
}

// projectionPrefixes are the key prefixes of the namespace's projections: everything replay
// compares, deletes or renames lives under them.
func (n *Namespace) projectionPrefixes() []string {
	return []string{n.Prefix + billing.Name + ":", n.Prefix + ratelimit.Name + ":"}
}

// Empty reports whether the namespace holds no projection keys (a fresh namespace for replay).
func (n *Namespace) Empty(ctx context.Context, rdb redis.UniversalClient) (bool, error) {
	for _, p := range n.projectionPrefixes() {
		keys, _, err := rdb.Scan(ctx, 0, p+"*", 100).Result()
		if err != nil {
			return false, fmt.Errorf("replay: scan %s: %w", p, err)
		}
		if len(keys) > 0 {
			return false, nil
		}
	}
	return true, nil
}

// scanKeys returns every key under prefix (SCAN, never KEYS).
func scanKeys(ctx context.Context, rdb redis.UniversalClient, prefix string) ([]string, error) {
	var out []string
	iter := rdb.Scan(ctx, 0, prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		out = append(out, iter.Val())
	}
	if err := iter.Err(); err != nil {
		return nil, fmt.Errorf("replay: scan %s: %w", prefix, err)
	}
	return out, nil
}

// WABAMonths lists the WABA-months the namespace's ledger has totals for ("<waba>|<month>",
// sorted).
func (n *Namespace) WABAMonths(ctx context.Context, rdb redis.UniversalClient) ([]string, error) {
	return wabaMonths(ctx, rdb, n)
}
