package kafkax

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/segmentio/kafka-go"
)

// TopicSpec is a topic EnsureTopics makes sure of.
type TopicSpec struct {
	Name       string
	Partitions int
	// ReplicationFactor defaults to 1 when zero.
	ReplicationFactor int
	// Configs are topic configs set at creation (cleanup.policy, max.message.bytes, ...). They are
	// not changed on an existing topic.
	Configs map[string]string
}

// Typed errors of the admin functions.
var (
	// ErrPartitionMismatch: an existing topic has another partition count than required.
	// Co-partitioned topics must never drift, so this stops a service at start-up.
	ErrPartitionMismatch = errors.New("topic partition count differs")
	// ErrConfigMismatch: an existing topic has another value for a config its spec sets (say, a
	// snapshots topic that is not compacted).
	ErrConfigMismatch = errors.New("topic config differs")
	// ErrUnknownTopic: the topic does not exist.
	ErrUnknownTopic = errors.New("unknown topic")
)

// PartitionMismatchError says which topic has which count. errors.Is matches ErrPartitionMismatch.
type PartitionMismatchError struct {
	Topic string
	Want  int
	Got   int
}

func (e *PartitionMismatchError) Error() string {
	return fmt.Sprintf("topic %q has %d partitions, want %d", e.Topic, e.Got, e.Want)
}

// Is matches ErrPartitionMismatch.
func (e *PartitionMismatchError) Is(target error) bool { return target == ErrPartitionMismatch }

// ConfigMismatchError says which topic config has which value. errors.Is matches
// ErrConfigMismatch.
type ConfigMismatchError struct {
	Topic  string
	Config string
	Want   string
	Got    string
}

func (e *ConfigMismatchError) Error() string {
	return fmt.Sprintf("topic %q has %s=%q, want %q", e.Topic, e.Config, e.Got, e.Want)
}

// Is matches ErrConfigMismatch.
func (e *ConfigMismatchError) Is(target error) bool { return target == ErrConfigMismatch }

func newClient(brokers []string) (*kafka.Client, error) {
	if len(brokers) == 0 {
		return nil, ErrNoBrokers
	}
	return &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 15 * time.Second}, nil
}

// EnsureTopics creates the topics that do not exist and verifies every topic, existing or new: its
// partition count (a *PartitionMismatchError when it differs) and the configs its spec sets (a
// *ConfigMismatchError); all mismatches are joined. Existing topics are never altered. It returns
// once the leader of every partition of every topic serves it, so reads and writes can start.
func EnsureTopics(ctx context.Context, brokers []string, specs ...TopicSpec) error {
	client, err := newClient(brokers)
	if err != nil {
		return fmt.Errorf("ensure topics: %w", err)
	}
	if len(specs) == 0 {
		return nil
	}
	req := &kafka.CreateTopicsRequest{}
	for _, s := range specs {
		if s.Name == "" || s.Partitions <= 0 {
			return fmt.Errorf("ensure topic %q: %d partitions: name and a positive count are required", s.Name, s.Partitions)
		}
		rf := s.ReplicationFactor
		if rf == 0 {
			rf = 1
		}
		tc := kafka.TopicConfig{Topic: s.Name, NumPartitions: s.Partitions, ReplicationFactor: rf}
		keys := make([]string, 0, len(s.Configs))
		for k := range s.Configs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			tc.ConfigEntries = append(tc.ConfigEntries, kafka.ConfigEntry{ConfigName: k, ConfigValue: s.Configs[k]})
		}
		req.Topics = append(req.Topics, tc)
	}
	resp, err := client.CreateTopics(ctx, req)
	if err != nil {
		return fmt.Errorf("ensure topics %s: create: %w", names(specs), err)
	}
	var errs []error
	for _, s := range specs {
		if e := resp.Errors[s.Name]; e != nil && !errors.Is(e, kafka.TopicAlreadyExists) {
			errs = append(errs, fmt.Errorf("create topic %q: %w", s.Name, e))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if err := waitTopics(ctx, client, specs); err != nil {
		return err
	}
	return checkConfigs(ctx, client, specs)
}

// checkConfigs compares the configs each spec sets with the topic's.
func checkConfigs(ctx context.Context, client *kafka.Client, specs []TopicSpec) error {
	req := &kafka.DescribeConfigsRequest{}
	for _, s := range specs {
		if len(s.Configs) == 0 {
			continue
		}
		r := kafka.DescribeConfigRequestResource{ResourceType: kafka.ResourceTypeTopic, ResourceName: s.Name}
		for k := range s.Configs {
			r.ConfigNames = append(r.ConfigNames, k)
		}
		sort.Strings(r.ConfigNames)
		req.Resources = append(req.Resources, r)
	}
	if len(req.Resources) == 0 {
		return nil
	}
	resp, err := client.DescribeConfigs(ctx, req)
	if err != nil {
		return fmt.Errorf("ensure topics %s: describe configs: %w", names(specs), err)
	}
	got := map[string]map[string]string{}
	var errs []error
	for _, r := range resp.Resources {
		if r.Error != nil {
			errs = append(errs, fmt.Errorf("describe configs of topic %q: %w", r.ResourceName, r.Error))
			continue
		}
		m := map[string]string{}
		for _, c := range r.ConfigEntries {
			m[c.ConfigName] = c.ConfigValue
		}
		got[r.ResourceName] = m
	}
	for _, s := range specs {
		keys := make([]string, 0, len(s.Configs))
		for k := range s.Configs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			m, ok := got[s.Name]
			if !ok {
				continue // its describe error is already reported
			}
			if v := m[k]; v != s.Configs[k] {
				errs = append(errs, &ConfigMismatchError{Topic: s.Name, Config: k, Want: s.Configs[k], Got: v})
			}
		}
	}
	return errors.Join(errs...)
}

// waitTopics polls metadata until every topic is known with a leader for each partition, and
// compares partition counts; then until every partition's leader answers ListOffsets. Right after
// a topic is created, a KRaft broker names a partition's leader in its metadata a little before
// that leader serves the partition (it answers Not Leader For Partition meanwhile): a topic is
// ready when its partitions can be read.
func waitTopics(ctx context.Context, client *kafka.Client, specs []TopicSpec) error {
	want := make([]string, len(specs))
	for i, s := range specs {
		want[i] = s.Name
	}
	deadline := time.Now().Add(30 * time.Second)
	for delay := 20 * time.Millisecond; ; delay = min(2*delay, time.Second) {
		counts, ready, err := partitionCounts(ctx, client, want)
		if err == nil {
			var errs []error
			for _, s := range specs {
				if n, ok := counts[s.Name]; ok && n != s.Partitions {
					errs = append(errs, &PartitionMismatchError{Topic: s.Name, Want: s.Partitions, Got: n})
				}
			}
			if len(errs) > 0 {
				return errors.Join(errs...)
			}
		}
		if err == nil && ready {
			ready, err = served(ctx, client, specs)
		}
		if err == nil && ready {
			return nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = errors.New("some partitions have no leader yet")
			}
			return fmt.Errorf("ensure topics %s: wait for metadata: %w", names(specs), err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("ensure topics %s: %w", names(specs), ctx.Err())
		case <-time.After(delay):
		}
	}
}

// served reports whether the leader of every partition of specs answers ListOffsets without an
// error.
func served(ctx context.Context, client *kafka.Client, specs []TopicSpec) (bool, error) {
	req := &kafka.ListOffsetsRequest{Topics: make(map[string][]kafka.OffsetRequest, len(specs))}
	for _, s := range specs {
		for p := range s.Partitions {
			req.Topics[s.Name] = append(req.Topics[s.Name], kafka.FirstOffsetOf(p))
		}
	}
	res, err := client.ListOffsets(ctx, req)
	if err != nil {
		return false, err
	}
	for _, s := range specs {
		got := res.Topics[s.Name]
		if len(got) != s.Partitions {
			return false, nil
		}
		for _, po := range got {
			if po.Error != nil {
				return false, nil
			}
		}
	}
	return true, nil
}

// partitionCounts returns the partition count of each known topic, and whether all topics are
// known with a leader on every partition.
func partitionCounts(ctx context.Context, client *kafka.Client, topics []string) (map[string]int, bool, error) {
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: topics})
	if err != nil {
		return nil, false, err
	}
	counts := make(map[string]int, len(topics))
	ready := true
	for _, t := range md.Topics {
		if !slices.Contains(topics, t.Name) {
			continue
		}
		if t.Error != nil {
			ready = false
			continue
		}
		counts[t.Name] = len(t.Partitions)
		for _, p := range t.Partitions {
			if p.Error != nil || p.Leader.Host == "" {
				ready = false
			}
		}
	}
	return counts, ready && len(counts) == len(topics), nil
}

// PartitionCount returns the number of partitions of topic, or an error matching ErrUnknownTopic.
func PartitionCount(ctx context.Context, brokers []string, topic string) (int, error) {
	client, err := newClient(brokers)
	if err != nil {
		return 0, fmt.Errorf("partition count of %q: %w", topic, err)
	}
	md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return 0, fmt.Errorf("partition count of %q: %w", topic, err)
	}
	for _, t := range md.Topics {
		if t.Name != topic {
			continue
		}
		if errors.Is(t.Error, kafka.UnknownTopicOrPartition) {
			return 0, fmt.Errorf("partition count of %q: %w (%w)", topic, ErrUnknownTopic, t.Error)
		}
		if t.Error != nil {
			return 0, fmt.Errorf("partition count of %q: %w", topic, t.Error)
		}
		return len(t.Partitions), nil
	}
	return 0, fmt.Errorf("partition count of %q: %w", topic, ErrUnknownTopic)
}

// DeleteTopics deletes topics; topics that do not exist are not an error.
func DeleteTopics(ctx context.Context, brokers []string, topics ...string) error {
	client, err := newClient(brokers)
	if err != nil {
		return fmt.Errorf("delete topics: %w", err)
	}
	if len(topics) == 0 {
		return nil
	}
	resp, err := client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: topics})
	if err != nil {
		return fmt.Errorf("delete topics %v: %w", topics, err)
	}
	var errs []error
	for t, e := range resp.Errors {
		if e != nil && !errors.Is(e, kafka.UnknownTopicOrPartition) {
			errs = append(errs, fmt.Errorf("delete topic %q: %w", t, e))
		}
	}
	return errors.Join(errs...)
}

func names(specs []TopicSpec) string {
	s := make([]string, len(specs))
	for i, sp := range specs {
		s[i] = sp.Name
	}
	return fmt.Sprint(s)
}

// PartitionBounds returns partition p of topic's first offset (retention deleted the records
// before it) and its end offset (the next one to be written).
func PartitionBounds(ctx context.Context, brokers []string, topic string, p int) (first, end int64, err error) {
	client, err := newClient(brokers)
	if err != nil {
		return 0, 0, fmt.Errorf("offsets of %s/%d: %w", topic, p, err)
	}
	res, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
		topic: {kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p)},
	}})
	if err != nil {
		return 0, 0, fmt.Errorf("offsets of %s/%d: %w", topic, p, err)
	}
	for _, po := range res.Topics[topic] {
		if po.Partition == p {
			if po.Error != nil {
				return 0, 0, fmt.Errorf("offsets of %s/%d: %w", topic, p, po.Error)
			}
			return po.FirstOffset, po.LastOffset, nil
		}
	}
	return 0, 0, fmt.Errorf("offsets of %s/%d: none returned", topic, p)
}
