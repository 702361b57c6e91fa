package redis

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/smppgw/smppgw/store"
	"github.com/smppgw/smppgw/store/internal/batch"
)

// Config says how to reach Redis and tunes the store.
type Config struct {
	// Addrs: one address for a single node, the seed nodes of a Cluster, or the Sentinels
	// when MasterName is set.
	Addrs      []string
	MasterName string // Sentinel master name
	Cluster    bool   // treat Addrs as a Redis Cluster even when there is one address
	Username   string
	Password   string
	DB         int
	TLS        *tls.Config
	// Prefix starts every key; default "smppgw:". It must not contain '{' or '}', which
	// would change the hash slots.
	Prefix string
	// Flushers is how many group-commit pipelines may be in flight at once; default 4.
	Flushers int
	// Shards is how many hash slots messages and queues are spread over; default 16, at most
	// 1024. A message's record, index entries and queue entries live in the slot of its shard
	// (derived from its id), so its accept is one script in one slot; a queue is one stream per
	// shard. Every instance over the same data must use the same number, and it must not
	// change while messages are kept: a record is looked up in its shard.
	Shards int
	store.Options
}

// Store is the Redis store. Create it with Open or New.
type Store struct {
	store.Admin
	c goredis.UniversalClient
	// rounds counts the group commit's pipelined round trips (GroupCommits).
	rounds atomic.Uint64
	own    bool // Close closes c
	// cluster: keys of different slots may live on different nodes, so no command spans
	// shards (a claim's blocking wait reads one shard's stream at a time).
	cluster bool
	prefix  string
	// tags are the shards' hash tags, "{...}", each chosen so that its slot lies in the
	// shard's own 1/Shards of the slot range: a cluster whose masters own equal ranges then
	// holds an equal share of the shards on each.
	tags []string
	// shardKeys are each shard's keys an accept names, built once.
	shardKeys []shardKeys
	opts      store.Options
	idMapTTL  any // opts.IDMapTTL in milliseconds, boxed once for the id map's SET
	w         *batch.Batcher[*op]
	closed    atomic.Bool
	once      sync.Once
	stopCtx   context.Context    // the sweeper's: ended by stop, which Close calls
	stop      context.CancelFunc // ends stopCtx
	lateFirst chan struct{}      // closed when the sweeper's first convertLate pass has ended
	// convertedAtOpen: this Open converted the release before's hashes (migrateMessages), so
	// the sweeper's first convertLate pass, a second scan of the same keyspace, is skipped.
	convertedAtOpen bool
	sweeper         sync.WaitGroup

	loadMu sync.Mutex // serialises script reloads after a server restart
	// receipt is AddReceipt's one script (receiptScript), nil on Cluster.
	receipt *goredis.Script

	accMu    sync.RWMutex
	accounts map[accountShard]*accountKeys // keys of each account and shard accepts named (keycache.go)
	streams  sync.Map                      // store.Queue -> []any: its streams' keys (streamKeys)

	// claims holds a *claimState per "queue\x00consumer" (see claimQ).
	claims   sync.Map
	staleFor time.Duration // tests: replaces staleAfter's default
	moTurn   atomic.Uint32 // spreads MO deliveries, which have no message, over the shards
	// sweeps holds when this instance last ran the consumer sweep of a stream (see claim).
	sweeps sync.Map
}

var _ store.Store = (*Store)(nil)

const group = "smppgw"

// Open connects to Redis as cfg says and checks it answers.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if len(cfg.Addrs) == 0 {
		return nil, fmt.Errorf("%w: redis: Config.Addrs is empty", store.ErrInvalid)
	}
	uo := &goredis.UniversalOptions{
		Addrs: cfg.Addrs, MasterName: cfg.MasterName, Username: cfg.Username, Password: cfg.Password,
		DB: cfg.DB, TLSConfig: cfg.TLS,
		// No client-side retries: a write whose reply was lost may have been applied, and
		// sending it again would queue a part twice. The caller gets ErrUnavailable and does
		// not acknowledge; the ESME's own retry is the only one.
		MaxRetries: -1,
		// The cluster client ignores MaxRetries: it sends a command again, up to MaxRedirects
		// times, after a lost connection, a read time-out or a CLUSTERDOWN, as well as after
		// MOVED. A resent accept then either reports ErrExists for its own first copy, or
		// reports the last copy's error (a refused dial: "not run") while the first copy ran
		// on the node before it died or ran when the stopped node woke: a message refused and
		// then sent. So none at all: a command's error is that of its one sending. MOVED
		// (the slots moved, the command did not run) still reloads the slot map and comes
		// back as ErrUnavailable; the caller's next try goes to the new owner.
		MaxRedirects: -1,
	}
	var c goredis.UniversalClient
	if cfg.Cluster || cfg.MasterName == "" && len(cfg.Addrs) > 1 {
		co := uo.Cluster()
		co.ClusterStateReloadInterval = clusterStateReload
		c = goredis.NewClusterClient(co)
	} else {
		c = goredis.NewUniversalClient(uo)
	}
	s, err := New(ctx, c, cfg)
	if err != nil {
		c.Close()
		return nil, err
	}
	s.own = true
	return s, nil
}

// clusterStateReload is how old the cluster client's slot map may grow before a command reloads it
// (CLUSTER SLOTS from one node, in the background). go-redis's default is a minute, and between
// reloads it learns of a new owner only from a MOVED reply: when a master dies for good and its
// replica is promoted, no MOVED ever comes from the dead address, and every write to its slots would
// fail for up to that minute.
const clusterStateReload = time.Second

// New builds the store on an existing client, which the caller keeps and closes. The client
// should have retries off (MaxRetries -1), as Open sets them, so no write is applied twice.
func New(ctx context.Context, c goredis.UniversalClient, cfg Config) (*Store, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = "smppgw:"
	}
	if strings.ContainsAny(cfg.Prefix, "{}") {
		return nil, fmt.Errorf("%w: redis: Config.Prefix %q holds a brace", store.ErrInvalid, cfg.Prefix)
	}
	if cfg.Flushers <= 0 {
		cfg.Flushers = 4
	}
	if cfg.Shards == 0 {
		cfg.Shards = 16
	}
	if cfg.Shards < 0 || cfg.Shards > maxShards {
		return nil, fmt.Errorf("%w: redis: Config.Shards %d not in 1..%d", store.ErrInvalid, cfg.Shards, maxShards)
	}
	_, cluster := c.(*goredis.ClusterClient)
	s := &Store{c: c, cluster: cluster, prefix: cfg.Prefix, tags: shardTags(cfg.Shards), opts: cfg.Options.WithDefaults(),
		lateFirst: make(chan struct{}), accounts: map[accountShard]*accountKeys{}}
	s.shardKeys = make([]shardKeys, len(s.tags))
	for sh, tag := range s.tags {
		k := &s.shardKeys[sh]
		k.accounts, k.dir = s.prefix+"accts:"+tag, s.prefix+"ibd:"+tag
		k.accountsArg, k.dirArg = k.accounts, k.dir
	}
	s.idMapTTL = s.opts.IDMapTTL.Milliseconds()
	s.Admin = store.Admin{B: configBackend{s}}
	if !cluster {
		s.receipt = receiptScript(s.tags)
	}
	if err := s.loadScripts(ctx); err != nil {
		return nil, err
	}
	if err := s.migrateMessages(ctx); err != nil {
		return nil, fmt.Errorf("redis: convert the messages of the release before: %w", err)
	}
	if err := s.migrateIndex(ctx); err != nil {
		return nil, fmt.Errorf("redis: migrate the time index: %w", err)
	}
	s.w = batch.New(cfg.Flushers, s.opts.MaxBatch, store.ErrClosed, s.flush)
	s.stopCtx, s.stop = context.WithCancel(context.Background())
	s.sweeper.Add(1)
	go s.sweep()
	return s, nil
}

// sweep trims the message index entries past MessageTTL every SweepInterval (Redis expires
// the messages themselves) and migrates index entries an instance of the release before wrote
// (migrateIndex); at start it converts the message hashes such instances wrote since the
// conversion (convertLate). Every instance sweeps; all three are idempotent.
func (s *Store) sweep() {
	defer s.sweeper.Done()
	t := time.NewTicker(s.opts.SweepInterval)
	defer t.Stop()
	ctx := s.stopCtx
	// Late hashes (convertLate) at once, unless Open has just converted them all, then at every
	// tick until one pass succeeds.
	lateDone := s.convertedAtOpen || s.convertLate(ctx) == nil
	close(s.lateFirst)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			// Errors are retried at the next tick; stale index entries are skipped by readers.
			if !lateDone {
				lateDone = s.convertLate(ctx) == nil
			}
			_ = s.migrateIndex(context.Background())
			if s.opts.MessageTTL > 0 {
				_ = s.trimIndex(context.Background(), nowUTC().Add(-s.opts.MessageTTL))
			}
		}
	}
}

func (s *Store) loadScripts(ctx context.Context) error {
	for _, sc := range allScripts {
		if err := sc.Load(ctx, s.c).Err(); err != nil {
			return mapErr(fmt.Errorf("redis: load script: %w", err))
		}
	}
	if s.receipt != nil {
		if err := s.receipt.Load(ctx, s.c).Err(); err != nil {
			return mapErr(fmt.Errorf("redis: load script: %w", err))
		}
	}
	return nil
}

// Ping checks that Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	return mapErr(s.c.Ping(ctx).Err())
}

// Close waits for queued writes, then closes the client if Open made it.
func (s *Store) Close() error {
	var err error
	s.once.Do(func() {
		s.closed.Store(true)
		s.stop()
		s.sweeper.Wait()
		s.w.Close()
		if s.own {
			err = s.c.Close()
		}
	})
	return err
}

// mapErr sorts Redis errors into the store's: unreachable or not-ready servers are
// ErrUnavailable, a missing key is ErrNotFound, anything else is returned wrapped.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, goredis.Nil) {
		return fmt.Errorf("%w: %w", store.ErrNotFound, err)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if errors.Is(err, goredis.ErrClosed) {
		return fmt.Errorf("%w: %w", store.ErrClosed, err)
	}
	var re goredis.Error
	if errors.As(err, &re) {
		for _, p := range []string{"LOADING", "READONLY", "MASTERDOWN", "CLUSTERDOWN", "TRYAGAIN", "BUSY", "NOREPLICAS", "OOM", "MISCONF", "NOSCRIPT", "MOVED", "ASK"} {
			if goredis.HasErrorPrefix(err, p) {
				return fmt.Errorf("%w: redis: %w", store.ErrUnavailable, err)
			}
		}
		return fmt.Errorf("store: redis: %w", err)
	}
	// Anything else from the client (refused or dropped connection, pool time-out, EOF)
	// means the server did not answer.
	return fmt.Errorf("%w: redis: %w", store.ErrUnavailable, err)
}

// op is one write of a group commit, as a small state machine: st.step queues the commands of
// its next round trip on p (reading the replies of the previous one first) and reports
// whether it queued any; when it reports false it is finished and err is its result. Most
// ops take one round trip; the receipt correlation takes two or three, because its keys live
// in two hash slots.
type op struct {
	st  stepper
	err error
}

// stepper is an op's step: a function (stepFunc), or a write's own state (acceptOp,
// updateOp), which then holds its op too, so that the op costs no allocation of its own.
type stepper interface {
	step(p goredis.Pipeliner) bool
}

type stepFunc func(p goredis.Pipeliner) bool

func (f stepFunc) step(p goredis.Pipeliner) bool { return f(p) }

// GroupCommits implements store.GroupCommitter: the pipelined round trips the group commit has
// made (a batch takes one or more: an accept one, a settle one or two, more on Cluster).
func (s *Store) GroupCommits() uint64 { return s.rounds.Load() }

// maxRounds bounds an op's round trips, so a bug cannot spin a flusher. The longest is a Settle on
// Cluster that picks up parked receipts: id map, update, park list, receipts, trim.
const maxRounds = 6

// flush runs a batch: each round, every unfinished op queues its next commands into one
// shared pipeline, sent in one round trip per node.
func (s *Store) flush(ops []*batch.Op[*op]) {
	active := make([]*op, len(ops))
	for i, o := range ops {
		active[i] = o.V
	}
	fp := &flushPipe{}
	for round := 0; len(active) > 0; round++ {
		fp.Pipeliner, fp.acks, fp.accepts = s.c.Pipeline(), fp.acks[:0], fp.accepts[:0]
		next := active[:0]
		for _, o := range active {
			if round == maxRounds {
				o.err = fmt.Errorf("store: redis: write did not finish in %d round trips", maxRounds)
				continue
			}
			if o.st.step(fp) {
				next = append(next, o)
			}
		}
		active = next
		if len(active) == 0 {
			break
		}
		fp.queueAccepts(s.cluster)
		fp.queueAcks()
		s.exec(fp.Pipeliner)
		s.rounds.Add(1)
	}
	for _, o := range ops {
		o.Err = o.V.err
	}
}

// flushPipe is a group commit's pipeline for one round trip, which also gathers the
// acknowledgements of the round's settles (ack) into one XACK and one XDEL per stream, queued
// after every op's commands (queueAcks): a command of many ids costs Redis far less than as
// many commands (parsing, dispatch, and the AOF entry of each).
type flushPipe struct {
	goredis.Pipeliner
	acks    []*ackGroup
	accepts []*acceptOp
}

// ackGroup is one stream's acknowledgements in a round; cmds are its XACK and XDEL once queued.
type ackGroup struct {
	stream string
	ids    []string
	cmds   [2]goredis.Cmder
}

// ack adds entry id of stream to the round's acknowledgements and returns its group, whose
// commands carry the outcome once the round trip is done.
func (fp *flushPipe) ack(stream, id string) *ackGroup {
	for _, g := range fp.acks {
		if g.stream == stream {
			g.ids = append(g.ids, id)
			return g
		}
	}
	g := &ackGroup{stream: stream, ids: []string{id}}
	fp.acks = append(fp.acks, g)
	return g
}

// queueAccepts queues the round's accepts as one script, or on Cluster, where a script's keys
// must share a slot, one script per shard (the accepts of one shard share its slot): the
// script's fixed cost (its call, the MULTI and EXEC around its writes in the AOF) is paid once
// for all of them, and their index members go in one RPUSH per bucket and one ZADD per
// account (see acceptAll).
func (fp *flushPipe) queueAccepts(cluster bool) {
	if len(fp.accepts) == 0 {
		return
	}
	if !cluster {
		fp.queueAcceptScript(fp.accepts)
		return
	}
	// Grouped by shard in place; stable, so each shard's accepts keep their order.
	slices.SortStableFunc(fp.accepts, func(a, b *acceptOp) int { return a.shard - b.shard })
	for start := 0; start < len(fp.accepts); {
		end := start + 1
		for end < len(fp.accepts) && fp.accepts[end].shard == fp.accepts[start].shard {
			end++
		}
		fp.queueAcceptScript(fp.accepts[start:end])
		start = end
	}
}

// queueAcceptScript queues one acceptAll for ops.
func (fp *flushPipe) queueAcceptScript(ops []*acceptOp) {
	cmd := goredis.NewCmd(context.Background(), acceptCommand(ops)...)
	for _, o := range ops {
		o.cmd = cmd
	}
	_ = fp.Process(context.Background(), cmd)
}

// queueAcks queues each group's XACK and XDEL, after everything the ops queued: on the same
// connection an acknowledgement then never goes before the update it follows.
func (fp *flushPipe) queueAcks() {
	ctx := context.Background()
	for _, g := range fp.acks {
		ack := make([]any, 3+len(g.ids), 3+2+2*len(g.ids))
		ack[0], ack[1], ack[2] = "xack", g.stream, group
		for i, id := range g.ids {
			ack[3+i] = id // boxed once, for both commands
		}
		del := append(ack[len(ack):], "xdel", g.stream)
		del = append(del, ack[3:]...)
		g.cmds[0], g.cmds[1] = goredis.NewIntCmd(ctx, ack...), goredis.NewIntCmd(ctx, del...)
		_ = fp.Process(ctx, g.cmds[0])
		_ = fp.Process(ctx, g.cmds[1])
	}
}

// exec sends p. When Redis restarted since the scripts were loaded, EVALSHA fails with
// NOSCRIPT having done nothing, so those commands alone are sent again after a reload.
func (s *Store) exec(p goredis.Pipeliner) {
	ctx := context.Background()
	cmds, _ := p.Exec(ctx) // errors are read per command by the ops
	var retry []goredis.Cmder
	for _, c := range cmds {
		// Checked first: HasErrorPrefix allocates even for a nil error or a nil reply.
		if err := c.Err(); err != nil && err != goredis.Nil && goredis.HasErrorPrefix(err, "NOSCRIPT") {
			retry = append(retry, c)
		}
	}
	if len(retry) == 0 {
		return
	}
	s.loadMu.Lock()
	err := s.loadScripts(ctx)
	s.loadMu.Unlock()
	if err != nil {
		return // the commands keep their NOSCRIPT error, reported as unavailable
	}
	p2 := s.c.Pipeline()
	for _, c := range retry {
		c.SetErr(nil)
		_ = p2.Process(ctx, c)
	}
	_, _ = p2.Exec(ctx)
}

// do runs one op through the group commit.
func (s *Store) do(ctx context.Context, step func(p goredis.Pipeliner) bool) error {
	return s.doOp(ctx, &op{st: stepFunc(step)})
}

// doOp runs o through the group commit.
func (s *Store) doOp(ctx context.Context, o *op) error {
	if s.closed.Load() {
		return store.ErrClosed
	}
	if err := s.w.Do(ctx, o); err != nil {
		return err
	}
	return o.err
}

// simple runs a write of one round trip through the group commit: queue adds its commands,
// done reads their replies.
func (s *Store) simple(ctx context.Context, queue func(p goredis.Pipeliner), done func() error) error {
	sent := false
	var result error
	err := s.do(ctx, func(p goredis.Pipeliner) bool {
		if !sent {
			sent = true
			queue(p)
			return true
		}
		result = done()
		return false
	})
	if err != nil {
		return err
	}
	return result
}

// Key layout. Braces are hash tags. A message's keys (record, receipts), its shard's indexes
// and its shard's stream of each queue share the shard's slot; the keys of one upstream id
// share theirs.
func (s *Store) kMsg(id string) string           { return s.prefix + "m:" + s.tags[s.shardOf(id)] + id }
func (s *Store) kRcpt(id string) string          { return s.prefix + "r:" + s.tags[s.shardOf(id)] + id }
func (s *Store) kMap(up, uid string) string      { return s.prefix + "u:{" + up + "\x00" + uid + "}" }
func (s *Store) kPark(up, uid string) string     { return s.prefix + "k:{" + up + "\x00" + uid + "}" }
func (s *Store) kIdxOld(sh int) string           { return s.prefix + "ix:" + s.tags[sh] } // before buckets: see migrateIndex
func (s *Store) kIdxDir(sh int) string           { return s.shardKeys[sh].dir }
func (s *Store) kIdxAcc(sh int, a string) string { return s.prefix + "ixa:" + s.tags[sh] + a }
func (s *Store) kLost() string                   { return s.prefix + "lost" }
func (s *Store) kLayout() string                 { return s.prefix + "layout" }      // see migrateMessages
func (s *Store) kLayoutAt() string               { return s.prefix + "layout-at" }   // see convertLate
func (s *Store) kAccounts(sh int) string         { return s.shardKeys[sh].accounts } // accounts with an index
func (s *Store) kConfig(k store.ConfigKind) string {
	return s.prefix + "c:" + string(k)
}

// kIdxBucket is the list of the time index entries of shard sh created in second b (see
// bucketOf).
func (s *Store) kIdxBucket(sh int, b uint64) string {
	return s.prefix + "ib:" + s.tags[sh] + strconv.FormatUint(b, 10)
}

func (s *Store) kStream(q store.Queue, sh int) string {
	return s.prefix + "q:" + s.tags[sh] + strconv.Itoa(int(q.Kind)) + ":" + q.Name
}

func (s *Store) kDelayed(q store.Queue, sh int) string {
	return s.prefix + "qd:" + s.tags[sh] + strconv.Itoa(int(q.Kind)) + ":" + q.Name
}

// shardKeys are a shard's keys of its set of accounts and of its time index's directory, also
// boxed once for the accepts' arguments, and its bucket of the current second (bucketArgsOf).
type shardKeys struct {
	accounts, dir       string
	accountsArg, dirArg any
	bucket              atomic.Pointer[bucketArgs]
}

// accountShard keys Store.accounts.
type accountShard struct {
	account string
	shard   int
}

// maxShards bounds Config.Shards: a claim may visit every shard.
const maxShards = 1024

// shardOf is the shard of a message id (FNV-1a).
func (s *Store) shardOf(id string) int {
	h := uint32(2166136261)
	for i := 0; i < len(id); i++ {
		h ^= uint32(id[i])
		h *= 16777619
	}
	return int(h % uint32(len(s.tags)))
}

// shardTags picks, for each of n shards, the first tag "{s<k>-<j>}" whose slot lies in the
// shard's 1/n of the 16384 slots.
func shardTags(n int) []string {
	tags := make([]string, n)
	for k := range tags {
		lo, hi := k*slots/n, (k+1)*slots/n
		for j := 0; ; j++ {
			t := "s" + strconv.Itoa(k) + "-" + strconv.Itoa(j)
			if sl := int(crc16(t)) % slots; sl >= lo && sl < hi {
				tags[k] = "{" + t + "}"
				break
			}
		}
	}
	return tags
}

const slots = 16384

// crc16 is Redis Cluster's key hash (CRC-16/XMODEM).
func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for b := 0; b < 8; b++ {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

func ns(t time.Time) string { return strconv.FormatInt(t.UnixNano(), 10) }

func nowUTC() time.Time { return time.Now().UTC() }

// configBackend keeps each kind in one hash.
type configBackend struct{ s *Store }

func (c configBackend) ConfigPut(ctx context.Context, kind store.ConfigKind, key string, value []byte, create bool) error {
	if c.s.closed.Load() {
		return store.ErrClosed
	}
	if create {
		ok, err := c.s.c.HSetNX(ctx, c.s.kConfig(kind), key, value).Result()
		if err != nil {
			return mapErr(err)
		}
		if !ok {
			return fmt.Errorf("%w: %s %s", store.ErrExists, kind, key)
		}
		return nil
	}
	return mapErr(c.s.c.HSet(ctx, c.s.kConfig(kind), key, value).Err())
}

func (c configBackend) ConfigGet(ctx context.Context, kind store.ConfigKind, key string) ([]byte, error) {
	if c.s.closed.Load() {
		return nil, store.ErrClosed
	}
	v, err := c.s.c.HGet(ctx, c.s.kConfig(kind), key).Bytes()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", kind, key, mapErr(err))
	}
	return v, nil
}

func (c configBackend) ConfigDelete(ctx context.Context, kind store.ConfigKind, key string) error {
	if c.s.closed.Load() {
		return store.ErrClosed
	}
	n, err := c.s.c.HDel(ctx, c.s.kConfig(kind), key).Result()
	if err != nil {
		return mapErr(err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %s %s", store.ErrNotFound, kind, key)
	}
	return nil
}

func (c configBackend) ConfigList(ctx context.Context, kind store.ConfigKind) ([][]byte, error) {
	if c.s.closed.Load() {
		return nil, store.ErrClosed
	}
	vals, err := c.s.c.HVals(ctx, c.s.kConfig(kind)).Result()
	if err != nil {
		return nil, mapErr(err)
	}
	out := make([][]byte, len(vals))
	for i, v := range vals {
		out[i] = []byte(v)
	}
	return out, nil
}
