package offsets

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/IBM/sarama"

	"github.com/eddy-streams/eddy/pipeline"
	"github.com/eddy-streams/eddy/statedb"
)

// Tool reads and moves one consumer group's offsets on one Kafka cluster,
// and reads the watermarks of the group's pipeline from its state store.
// It holds a Kafka client; Close releases it. A Tool is not safe for
// concurrent use.
type Tool struct {
	group  string
	cfg    *sarama.Config
	client sarama.Client
	admin  sarama.ClusterAdmin
	store  statedb.Inspector

	beforeCommit func(attempt int) // tests: runs before each commit of Apply
}

// Option configures a Tool.
type Option func(*options)

type options struct {
	cfg   *sarama.Config
	store statedb.Inspector
}

// WithSaramaConfig sets the Kafka client configuration (version, TLS,
// SASL, client id). Default: sarama's defaults with protocol version
// 2.8.0. The Tool keeps cfg; do not change it afterwards.
func WithSaramaConfig(cfg *sarama.Config) Option { return func(o *options) { o.cfg = cfg } }

// WithStore sets the pipeline's state store, read with Inspect (which does
// not claim partitions). Without it, watermarks are reported as unknown
// (PartitionStatus.Watermark nil) and a plan cannot say what a replay skips.
// If s is also a statedb.Store, Apply advances the watermark of partitions
// a forward reset moves past W+1, so that the skip is honoured. The Tool
// does not close the store.
func WithStore(s statedb.Inspector) Option { return func(o *options) { o.store = s } }

// New connects to brokers and returns a Tool for consumer group group.
func New(brokers []string, group string, opts ...Option) (*Tool, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if err := validate(brokers, group, &o); err != nil {
		return nil, err
	}
	client, err := sarama.NewClient(brokers, o.cfg)
	if err != nil {
		return nil, fmt.Errorf("offsets: connect to kafka %v: %w", brokers, err)
	}
	admin, err := sarama.NewClusterAdminFromClient(client)
	if err != nil {
		_ = client.Close()
		return nil, fmt.Errorf("offsets: kafka admin: %w", err)
	}
	return &Tool{group: group, cfg: o.cfg, client: client, admin: admin, store: o.store}, nil
}

func validate(brokers []string, group string, o *options) error {
	var errs []error
	if len(brokers) == 0 {
		errs = append(errs, errors.New("offsets: no brokers"))
	}
	if group == "" {
		errs = append(errs, errors.New("offsets: empty group id"))
	}
	if o.cfg == nil {
		o.cfg = sarama.NewConfig()
		o.cfg.Version = sarama.V2_8_0_0
	}
	if !o.cfg.Version.IsAtLeast(sarama.V2_1_0_0) {
		errs = append(errs, fmt.Errorf("offsets: kafka version %s: at least 2.1.0 is needed", o.cfg.Version))
	}
	if err := o.cfg.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("offsets: kafka config: %w", err))
	}
	return errors.Join(errs...)
}

// Close releases the Kafka connections (not the store).
func (t *Tool) Close() error { return t.admin.Close() } // closes the client too

// GroupID returns the consumer group the Tool works on.
func (t *Tool) GroupID() string { return t.group }

// GroupOf returns the consumer group a pipeline's workers join when no
// override is given: kafka.group, else "eddy-<name>" (as processor.New).
func GroupOf(p *pipeline.Pipeline) string {
	if p.Spec.Kafka.Group != "" {
		return p.Spec.Kafka.Group
	}
	return "eddy-" + p.Spec.Name
}

// Group is a consumer group as its coordinator describes it.
type Group struct {
	ID string `json:"id"`
	// State is Kafka's group state: Empty, Stable, PreparingRebalance,
	// CompletingRebalance or Dead (also for a group that does not exist).
	State   string   `json:"state"`
	Members []Member `json:"members"`
}

// Active reports whether the group has (or is gathering) members: any
// state but Empty and Dead. Kafka takes offset commits from outside the
// group only while it is not active.
func (g *Group) Active() bool { return g.State != "Empty" && g.State != "Dead" }

// Member is a live member of a group.
type Member struct {
	ID string `json:"id"`
	// InstanceID is the static membership id (kafka.instance_id), if any.
	InstanceID string `json:"instance_id,omitempty"`
	ClientID   string `json:"client_id"`
	Host       string `json:"host"`
	// Assigned are the member's partitions per topic, as the group leader
	// assigned them (empty while the group rebalances).
	Assigned map[string][]int32 `json:"assigned,omitempty"`
}

// String names the member for people: id, client, host, static id and
// assignment.
func (m Member) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (client %s, host %s", m.ID, m.ClientID, m.Host)
	if m.InstanceID != "" {
		fmt.Fprintf(&b, ", static instance %s", m.InstanceID)
	}
	if len(m.Assigned) > 0 {
		topics := make([]string, 0, len(m.Assigned))
		for t := range m.Assigned {
			topics = append(topics, t)
		}
		slices.Sort(topics)
		b.WriteString(", partitions")
		for _, t := range topics {
			fmt.Fprintf(&b, " %s%v", t, m.Assigned[t])
		}
	}
	b.WriteString(")")
	return b.String()
}

// Describe asks the group's coordinator for the group's state and members.
func (t *Tool) Describe(ctx context.Context) (*Group, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("offsets: describe group %s: %w", t.group, err)
	}
	ds, err := t.admin.DescribeConsumerGroups([]string{t.group})
	if err != nil {
		return nil, fmt.Errorf("offsets: describe group %s: %w", t.group, err)
	}
	if len(ds) != 1 {
		return nil, fmt.Errorf("offsets: describe group %s: %d answers, want 1", t.group, len(ds))
	}
	d := ds[0]
	g := &Group{ID: t.group, State: d.State}
	switch {
	case errors.Is(d.Err, sarama.ErrGroupIDNotFound):
		g.State = "Dead"
		return g, nil
	case !errors.Is(d.Err, sarama.ErrNoError):
		return nil, fmt.Errorf("offsets: describe group %s: %w", t.group, d.Err)
	}
	for id, md := range d.Members {
		m := Member{ID: id, ClientID: md.ClientId, Host: md.ClientHost}
		if md.GroupInstanceId != nil {
			m.InstanceID = *md.GroupInstanceId
		}
		if a, err := md.GetMemberAssignment(); err == nil && a != nil {
			m.Assigned = a.Topics
			for _, ps := range m.Assigned {
				slices.Sort(ps)
			}
		}
		g.Members = append(g.Members, m)
	}
	slices.SortFunc(g.Members, func(a, b Member) int { return strings.Compare(a.ID, b.ID) })
	return g, nil
}

// partitions returns the partition ids of topic, sorted.
// HasTopic reports whether topic exists on the cluster (a repartition's
// internal topic exists once a worker of the pipeline has started).
func (t *Tool) HasTopic(topic string) (bool, error) {
	if err := t.client.RefreshMetadata(); err != nil {
		return false, fmt.Errorf("offsets: metadata: %w", err)
	}
	topics, err := t.client.Topics()
	if err != nil {
		return false, fmt.Errorf("offsets: topics: %w", err)
	}
	return slices.Contains(topics, topic), nil
}

func (t *Tool) partitions(topic string) ([]int32, error) {
	ps, err := t.client.Partitions(topic)
	if err != nil {
		return nil, fmt.Errorf("offsets: topic %q: %w", topic, err)
	}
	ps = slices.Clone(ps)
	slices.Sort(ps)
	return ps, nil
}

// logRange returns a partition's log start and end offsets.
func (t *Tool) logRange(topic string, p int32) (start, end int64, err error) {
	if start, err = t.client.GetOffset(topic, p, sarama.OffsetOldest); err != nil {
		return 0, 0, fmt.Errorf("offsets: log start of %s/%d: %w", topic, p, err)
	}
	if end, err = t.client.GetOffset(topic, p, sarama.OffsetNewest); err != nil {
		return 0, 0, fmt.Errorf("offsets: log end of %s/%d: %w", topic, p, err)
	}
	return start, end, nil
}

// Committed returns the group's committed offset of each of parts of topic
// (-1 for a partition without one).
func (t *Tool) Committed(ctx context.Context, topic string, parts []int32) (map[int32]int64, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("offsets: committed offsets of group %s: %w", t.group, err)
	}
	resp, err := t.admin.ListConsumerGroupOffsets(t.group, map[string][]int32{topic: parts})
	if err != nil {
		return nil, fmt.Errorf("offsets: committed offsets of group %s on %s: %w", t.group, topic, err)
	}
	out := make(map[int32]int64, len(parts))
	for _, p := range parts {
		b := resp.GetBlock(topic, p)
		switch {
		case b == nil:
			return nil, fmt.Errorf("offsets: committed offset of group %s on %s/%d: no answer", t.group, topic, p)
		case !errors.Is(b.Err, sarama.ErrNoError):
			return nil, fmt.Errorf("offsets: committed offset of group %s on %s/%d: %w", t.group, topic, p, b.Err)
		}
		out[p] = b.Offset
	}
	return out, nil
}

// watermark reads p's offset watermark and epoch from the store; nil
// without a store.
func (t *Tool) watermark(ctx context.Context, p statedb.Partition) (*Watermark, error) {
	if t.store == nil {
		return nil, nil
	}
	c, err := t.store.Inspect(ctx, p)
	if err != nil {
		return nil, fmt.Errorf("offsets: watermark of %v: %w", p, err)
	}
	return &Watermark{Offset: c.Offset, Epoch: c.Epoch}, nil
}
