package redis

import (
	"context"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/smppgw/smppgw/pdu"
	"github.com/smppgw/smppgw/store"
)

// AcceptMessage writes m and queues its parts. On a single node or Sentinel one Lua script
// does both, atomically. On Cluster the message and its queue live in different slots, so
// the record is written first and the index and queue entries in the next round trip of the
// same batch; if that second write fails the call fails (the gateway does not acknowledge)
// and the record stays behind as an orphan in ACCEPTED state that nothing will send.
func (s *Store) AcceptMessage(ctx context.Context, m *store.Message) error {
	if err := store.ValidateMessage(m); err != nil {
		return err
	}
	store.PrepareAccept(m, nowUTC())
	q := store.Queue{Kind: store.SubmitQueue, Name: m.Upstream}
	member := string(store.IndexKey(m.CreatedAt, m.ID))
	var expireAt int64
	if s.opts.MessageTTL > 0 {
		expireAt = m.CreatedAt.Add(s.opts.MessageTTL).UnixMilli()
	}
	args := make([]any, 6, 7+len(m.Parts))
	args[0], args[1], args[2], args[3], args[4], args[5] = store.AppendMessage(nil, m), len(m.Parts), int(m.Status), ns(m.CreatedAt), member, expireAt
	for i := range m.Parts {
		args = append(args, store.AppendPartTask(nil, store.NewPartTask(m, i)))
	}
	now := time.Now()
	addAccount := !s.accountSeen(m.Account, now)
	if !s.splitAccept {
		account := ""
		if addAccount {
			account = m.Account
		}
		args = append(args, account)
		keys := []string{s.kMsg(m.ID), s.kStream(q), s.kIdx(), s.kIdxAcc(m.Account), s.kAccounts()}
		var cmd *goredis.Cmd
		err := s.simple(ctx, func(p goredis.Pipeliner) {
			cmd = acceptAll.EvalSha(ctx, p, keys, args...)
		}, func() error { return acceptResult(m.ID, cmd) })
		if err == nil && addAccount {
			s.sawAccount(m.Account, now)
		}
		return err
	}
	round := 0
	var first *goredis.Cmd
	var rest []goredis.Cmder
	var result error
	err := s.do(ctx, func(p goredis.Pipeliner) bool {
		round++
		switch round {
		case 1:
			first = acceptMsg.EvalSha(ctx, p, []string{s.kMsg(m.ID)}, args[:6]...)
			return true
		case 2:
			if result = acceptResult(m.ID, first); result != nil {
				return false
			}
			rest = append(rest, p.ZAdd(ctx, s.kIdx(), goredis.Z{Member: member}), p.ZAdd(ctx, s.kIdxAcc(m.Account), goredis.Z{Member: member}))
			if addAccount {
				rest = append(rest, p.SAdd(ctx, s.kAccounts(), m.Account))
			}
			for _, payload := range args[6:] {
				rest = append(rest, p.XAdd(ctx, &goredis.XAddArgs{Stream: s.kStream(q), Values: []any{"p", payload}}))
			}
			return true
		}
		for _, c := range rest {
			if err := c.Err(); err != nil {
				result = fmt.Errorf("message %s written, queueing failed: %w", m.ID, mapErr(err))
				break
			}
		}
		return false
	})
	if err != nil {
		return err
	}
	if result == nil && addAccount {
		s.sawAccount(m.Account, now)
	}
	return result
}

// accountSeen reports whether this instance added account to the set of accounts (which the
// index sweep walks) within the last SweepInterval: then an accept need not add it again. The
// set is written again once per interval, so one that went missing (a flushed database, a
// failover to a replica that had not got the write) is whole again after an interval.
func (s *Store) accountSeen(account string, now time.Time) bool {
	s.accMu.RLock()
	at, ok := s.accounts[account]
	s.accMu.RUnlock()
	return ok && now.Sub(at) < s.opts.SweepInterval
}

// sawAccount notes that account is in the set of accounts, as of now.
func (s *Store) sawAccount(account string, now time.Time) {
	s.accMu.Lock()
	s.accounts[account] = now
	s.accMu.Unlock()
}

func acceptResult(id string, cmd *goredis.Cmd) error {
	v, err := cmd.Int()
	switch {
	case err != nil:
		return fmt.Errorf("accept %s: %w", id, mapErr(err))
	case v == 0:
		return fmt.Errorf("%w: message %s", store.ErrExists, id)
	}
	return nil
}

// GetMessage reads one message hash.
func (s *Store) GetMessage(ctx context.Context, id string) (*store.Message, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	h, err := s.c.HGetAll(ctx, s.kMsg(id)).Result()
	if err != nil {
		return nil, mapErr(err)
	}
	if len(h) == 0 {
		return nil, fmt.Errorf("%w: message %s", store.ErrNotFound, id)
	}
	return decodeHash(id, h)
}

// hashReply turns a script's HGETALL reply into a map.
func hashReply(id string, v any) (map[string]string, error) {
	a, ok := v.([]any)
	if !ok || len(a)%2 != 0 {
		return nil, fmt.Errorf("%w: message %s: unexpected reply %T", store.ErrCorrupt, id, v)
	}
	h := make(map[string]string, len(a)/2)
	for i := 0; i < len(a); i += 2 {
		k, ok1 := a[i].(string)
		val, ok2 := a[i+1].(string)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("%w: message %s: unexpected reply field", store.ErrCorrupt, id)
		}
		h[k] = val
	}
	return h, nil
}

// decodeHash rebuilds a message from its hash: the accepted record, overlaid with the
// fields later writes changed.
func decodeHash(id string, h map[string]string) (*store.Message, error) {
	bad := func(what string) error {
		return fmt.Errorf("%w: message %s: %s", store.ErrCorrupt, id, what)
	}
	b, ok := h["b"]
	if !ok {
		return nil, bad("no record")
	}
	m, err := store.DecodeMessage([]byte(b))
	if err != nil {
		return nil, fmt.Errorf("message %s: %w", id, err)
	}
	state := func(f string, into *pdu.MessageState) error {
		if v, ok := h[f]; ok {
			n, err := strconv.ParseUint(v, 10, 8)
			if err != nil {
				return bad(f)
			}
			*into = pdu.MessageState(n)
		}
		return nil
	}
	stamp := func(f string, into *time.Time) error {
		if v, ok := h[f]; ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return bad(f)
			}
			*into = time.Unix(0, n).UTC()
		}
		return nil
	}
	if err := state("s", &m.Status); err != nil {
		return nil, err
	}
	if err := stamp("u", &m.UpdatedAt); err != nil {
		return nil, err
	}
	if hist, ok := h["hist"]; ok {
		m.History = m.History[:0]
		for _, e := range strings.Split(hist, ";") {
			if e == "" {
				continue
			}
			st, at, ok := strings.Cut(e, ":")
			sn, err1 := strconv.ParseUint(st, 10, 8)
			an, err2 := strconv.ParseInt(at, 10, 64)
			if !ok || err1 != nil || err2 != nil {
				return nil, bad("history")
			}
			m.History = append(m.History, store.StatusChange{State: pdu.MessageState(sn), At: time.Unix(0, an).UTC()})
		}
	}
	for i := range m.Parts {
		p := &m.Parts[i]
		f := &partFields[i]
		if err := state(f.status, &p.Status); err != nil {
			return nil, err
		}
		if v, ok := h[f.err]; ok {
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return nil, bad(f.err)
			}
			p.Error = uint32(n)
		}
		if v, ok := h[f.upstream]; ok {
			p.Upstream = v
		}
		if v, ok := h[f.upstreamID]; ok {
			p.UpstreamID = v
		}
		if err := stamp(f.updated, &p.UpdatedAt); err != nil {
			return nil, err
		}
		if err := stamp(f.submitted, &p.SubmittedAt); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// partFields are the message hash's field names of each part (see scripts.go), built once
// rather than for every message read.
var partFields = func() (f [store.MaxParts]struct{ status, err, upstream, upstreamID, updated, submitted string }) {
	for i := range f {
		is := strconv.Itoa(i)
		f[i].status, f[i].err, f[i].upstream = "ps"+is, "pe"+is, "pu"+is
		f[i].upstreamID, f[i].updated, f[i].submitted = "pi"+is, "pt"+is, "pq"+is
	}
	return f
}()

// scanBudget bounds the index entries one page looks at (see the embedded store).
const scanBudget = 20 * store.MaxListLimit

// ListMessages walks the lexicographic time index (per account when f.Account is set).
func (s *Store) ListMessages(ctx context.Context, f store.MessageFilter) ([]*store.Message, string, error) {
	if s.closed.Load() {
		return nil, "", store.ErrClosed
	}
	limit := f.PageLimit()
	key := s.kIdx()
	if f.Account != "" {
		key = s.kIdxAcc(f.Account)
	}
	lo, hi := "-", "+"
	var from string
	if !f.From.IsZero() {
		from = string(store.IndexKey(f.From, ""))
		lo = "[" + from
	}
	if f.Cursor != "" {
		after, err := store.DecodeCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		if string(after) >= from {
			lo = "(" + string(after)
		}
	}
	if !f.To.IsZero() {
		hi = "(" + string(store.IndexKey(f.To, ""))
	}
	var out []*store.Message
	scanned := 0
	chunk := int64(min(2*limit, store.MaxListLimit))
	for {
		members, err := s.c.ZRangeByLex(ctx, key, &goredis.ZRangeBy{Min: lo, Max: hi, Count: chunk}).Result()
		if err != nil {
			return nil, "", mapErr(err)
		}
		if len(members) == 0 {
			return out, "", nil
		}
		cmds := make([]*goredis.MapStringStringCmd, len(members))
		p := s.c.Pipeline()
		for i, mem := range members {
			if len(mem) < 9 {
				return nil, "", fmt.Errorf("%w: index member", store.ErrCorrupt)
			}
			cmds[i] = p.HGetAll(ctx, s.kMsg(mem[8:]))
		}
		if _, err := p.Exec(ctx); err != nil && err != goredis.Nil {
			return nil, "", mapErr(err)
		}
		for i, mem := range members {
			h := cmds[i].Val()
			scanned++
			if len(h) > 0 {
				m, err := decodeHash(mem[8:], h)
				if err != nil {
					return nil, "", err
				}
				if f.Match(m) {
					out = append(out, m)
				}
			}
			more := i < len(members)-1 || int64(len(members)) == chunk
			if (len(out) == limit || scanned >= scanBudget) && more {
				return out, store.EncodeCursor([]byte(mem)), nil
			}
		}
		if int64(len(members)) < chunk {
			return out, "", nil
		}
		lo = "(" + members[len(members)-1]
	}
}

// UpdatePart writes the id map (taking what was parked), then updates the message and
// attaches the parked receipts, then drops them from the park list: three round trips in
// the group commit, because the id map and the message hash live in different slots.
// Parked receipts are removed only after they were applied, so a failure in between keeps
// them (at worst applied twice on a retry), never loses them.
func (s *Store) UpdatePart(ctx context.Context, u store.PartUpdate) (*store.Message, []store.Receipt, error) {
	if u.UpstreamID != "" {
		if err := store.ValidateUpstreamID(u.Upstream, u.UpstreamID); err != nil {
			return nil, nil, err
		}
	}
	if u.At.IsZero() {
		u.At = nowUTC()
	}
	var (
		round    int
		mapCmd   *goredis.Cmd
		updCmd   *goredis.Cmd
		nParked  int
		attached []store.Receipt
		m        *store.Message
		result   error
	)
	queueUpdate := func(p goredis.Pipeliner) {
		args := []any{u.Part, u.Upstream, u.UpstreamID, int(u.Status), u.Error, ns(u.At)}
		for i := range attached {
			r := &attached[i]
			args = append(args, int(r.State), r.Error, ns(r.Received), store.AppendReceipt(nil, r))
		}
		updCmd = updatePart.EvalSha(ctx, p, []string{s.kMsg(u.MessageID), s.kRcpt(u.MessageID)}, args...)
	}
	err := s.do(ctx, func(p goredis.Pipeliner) bool {
		round++
		switch {
		case round == 1 && u.UpstreamID != "":
			val := strconv.Itoa(u.Part) + ":" + u.MessageID
			mapCmd = mapSet.EvalSha(ctx, p, []string{s.kMap(u.Upstream, u.UpstreamID), s.kPark(u.Upstream, u.UpstreamID)}, val, s.opts.IDMapTTL.Milliseconds())
			return true
		case round == 1:
			round++ // no mapping to write: go straight to the message update
			queueUpdate(p)
			return true
		case round == 2:
			parked, err := mapCmd.StringSlice()
			if err != nil {
				result = mapErr(err)
				return false
			}
			nParked = len(parked)
			attached = parkedReceipts(parked, u.MessageID, u.Part, u.At)
			queueUpdate(p)
			return true
		case round == 3:
			m, result = messageReply(u.MessageID, u.Part, updCmd)
			if result != nil || nParked == 0 {
				return false
			}
			// Only the entries read in round 2: a receipt parked since then stays.
			p.LTrim(ctx, s.kPark(u.Upstream, u.UpstreamID), int64(nParked), -1)
			return true
		}
		// The trim's outcome does not matter to the caller: left-over parked receipts expire
		// after ParkTTL.
		return false
	})
	if err != nil {
		return nil, nil, err
	}
	if result != nil {
		return nil, nil, result
	}
	return m, attached, nil
}

// Settle is UpdatePart and Ack. On one node it is one script in one round trip of the group
// commit, unless a receipt is parked under the upstream id: then it goes on as UpdatePart and
// Ack do (the script wrote only the id map, which UpdatePart writes again). On Cluster the id
// map, the message and the queue live in different slots, so it is UpdatePart and then Ack.
func (s *Store) Settle(ctx context.Context, l store.Lease, u store.PartUpdate) (*store.Message, []store.Receipt, error) {
	id, _, err := parseLease(l)
	if err != nil {
		return nil, nil, err
	}
	if u.UpstreamID != "" {
		if err := store.ValidateUpstreamID(u.Upstream, u.UpstreamID); err != nil {
			return nil, nil, err
		}
	}
	if u.At.IsZero() {
		u.At = nowUTC()
	}
	if !s.splitAccept {
		var val string
		if u.UpstreamID != "" {
			val = strconv.Itoa(u.Part) + ":" + u.MessageID
		}
		keys := []string{s.kMap(u.Upstream, u.UpstreamID), s.kPark(u.Upstream, u.UpstreamID), s.kMsg(u.MessageID), s.kStream(l.Queue)}
		var cmd *goredis.Cmd
		var m *store.Message
		fast := true
		err := s.simple(ctx, func(p goredis.Pipeliner) {
			cmd = settle.EvalSha(ctx, p, keys, val, s.opts.IDMapTTL.Milliseconds(), group, id,
				u.Part, u.Upstream, u.UpstreamID, int(u.Status), u.Error, ns(u.At))
		}, func() error {
			if n, err := cmd.Int64(); err == nil && n == 0 {
				fast = false
				return nil
			}
			var err error
			m, err = messageReply(u.MessageID, u.Part, cmd)
			return err
		})
		if err != nil || fast {
			return m, nil, err
		}
	}
	m, attached, err := s.UpdatePart(ctx, u)
	if err != nil {
		return nil, nil, err
	}
	if err := s.Ack(ctx, l); err != nil {
		return nil, nil, err
	}
	return m, attached, nil
}

// parkedReceipts decodes park list entries (expiry, then receipt), dropping expired and
// undecodable ones, and correlates them to (id, part).
func parkedReceipts(entries []string, id string, part int, now time.Time) []store.Receipt {
	var out []store.Receipt
	for _, e := range entries {
		if len(e) < 8 || int64(binary.BigEndian.Uint64([]byte(e[:8]))) <= now.UnixNano() {
			continue
		}
		r, err := store.DecodeReceipt([]byte(e[8:]))
		if err != nil {
			continue
		}
		r.MessageID, r.Part = id, part
		out = append(out, *r)
	}
	return out
}

// messageReply reads the reply of updatePart or applyReceipt.
func messageReply(id string, part int, cmd *goredis.Cmd) (*store.Message, error) {
	v, err := cmd.Result()
	if err != nil {
		return nil, mapErr(err)
	}
	switch v := v.(type) {
	case int64:
		if v == -1 {
			return nil, fmt.Errorf("%w: message %s", store.ErrNotFound, id)
		}
		return nil, fmt.Errorf("%w: message %s has no part %d", store.ErrInvalid, id, part)
	}
	h, err := hashReply(id, v)
	if err != nil {
		return nil, err
	}
	return decodeHash(id, h)
}

// AddReceipt looks the mapping up or parks the receipt (one script, one slot), then applies
// it to the message (a second script in the message's slot).
func (s *Store) AddReceipt(ctx context.Context, r *store.Receipt) (*store.Message, bool, error) {
	if err := store.ValidateUpstreamID(r.Upstream, r.UpstreamID); err != nil {
		return nil, false, err
	}
	if r.Received.IsZero() {
		r.Received = nowUTC()
	}
	exp := r.Received.Add(s.opts.ParkTTL)
	parkEntry := store.AppendReceipt(binary.BigEndian.AppendUint64(nil, uint64(exp.UnixNano())), r)
	var (
		round  int
		c1, c2 *goredis.Cmd
		m      *store.Message
		parked bool
		result error
	)
	err := s.do(ctx, func(p goredis.Pipeliner) bool {
		round++
		switch round {
		case 1:
			c1 = mapOrPark.EvalSha(ctx, p, []string{s.kMap(r.Upstream, r.UpstreamID), s.kPark(r.Upstream, r.UpstreamID)}, parkEntry, s.opts.ParkTTL.Milliseconds())
			return true
		case 2:
			v, err := c1.Text()
			if err == goredis.Nil {
				parked = true
				return false
			}
			if err != nil {
				result = mapErr(err)
				return false
			}
			ps, id, ok := strings.Cut(v, ":")
			part, perr := strconv.Atoi(ps)
			if !ok || perr != nil || part < 0 || part >= store.MaxParts {
				result = fmt.Errorf("%w: id map value %q", store.ErrCorrupt, v)
				return false
			}
			r.MessageID, r.Part = id, part
			c2 = applyReceipt.EvalSha(ctx, p, []string{s.kMsg(id), s.kRcpt(id)}, part, int(r.State), r.Error, ns(r.Received), store.AppendReceipt(nil, r))
			return true
		}
		m, result = messageReply(r.MessageID, r.Part, c2)
		return false
	})
	if err != nil {
		return nil, false, err
	}
	if result != nil {
		return nil, false, result
	}
	return m, parked, nil
}

// ListReceipts returns the receipts list of a message.
func (s *Store) ListReceipts(ctx context.Context, id string) ([]store.Receipt, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	p := s.c.Pipeline()
	ex := p.Exists(ctx, s.kMsg(id))
	lr := p.LRange(ctx, s.kRcpt(id), 0, -1)
	if _, err := p.Exec(ctx); err != nil {
		return nil, mapErr(err)
	}
	if ex.Val() == 0 {
		return nil, fmt.Errorf("%w: message %s", store.ErrNotFound, id)
	}
	out := make([]store.Receipt, 0, len(lr.Val()))
	for _, v := range lr.Val() {
		r, err := store.DecodeReceipt([]byte(v))
		if err != nil {
			return nil, fmt.Errorf("receipt of %s: %w", id, err)
		}
		out = append(out, *r)
	}
	return out, nil
}
