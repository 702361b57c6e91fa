// Package embedded is the store used when no Redis address is configured: a write-ahead log
// and a bbolt file on local disk, durable (one fdatasync per group commit), for one gateway
// process.
//
// Writes go through a group commit pipelined in two goroutines (commit.go). The stager takes
// every write queued as one batch and runs its ops against a write set: a layered view (mem.go)
// of the batch's own changes over the previous batch's (until that one is merged), the
// memtables and a bbolt read transaction, with bbolt's bucket, cursor and sequence calls, so
// the ops keep bbolt's shape. The write set (the physical keys put and deleted) becomes one WAL
// record, written with one write; the syncer makes it durable with one fdatasync, merges it
// into the active memtable and answers the batch's writers. While one record syncs, the stager
// gathers the next batch, and runs its ops once that sync ends or the batch has 32 writes (so
// under load the next batch's ops run during the sync). The hot writes (accept, settle) can be
// asynchronous (async.go): the syncer runs their completions instead of waking a goroutine parked
// on each. An op failing half-way fails alone: the batch's ops then run one by one.
//
// The memtables are ordered per bucket (sorted runs, see below), with tombstones. Readers see
// active, then frozen, then bbolt, merged in key order. When active passes 16 MiB or 1 s it is
// frozen and the checkpointer writes it into bbolt in one transaction with the WAL position it
// covers, then drops it and recycles the WAL segments it covered. A message accepted and
// settled within one interval reaches bbolt once, not once per write. A key put under a fresh
// sequence number (queue entries, receipts, parked receipts, lost PDUs) is marked so in the
// memtable, and removing it there removes it: a queue entry added and removed within one
// interval never reaches bbolt, not even as a tombstone to seek. While a checkpoint runs,
// writers wait once active reaches 48 MiB, so memory stays bounded when bbolt falls behind.
// Open replays the WAL after bbolt's position into bbolt in one transaction; Close checkpoints
// everything, so a clean close leaves no WAL. After a failed WAL write or sync every write
// fails until the store is reopened (what reached the disk is not known; replay tells).
//
// Why not bbolt alone: every group commit was a bbolt transaction rewriting the B+tree pages of
// about five buckets with two fsyncs (pages, then meta), ~5 ms and ~1.8 ms of CPU each, and a
// message needs two commits in sequence (accept, then settle). An fdatasync over bytes already
// in the file (the WAL reserves zeros ahead, or reuses a covered segment) costs 0.18 ms against
// 0.84 ms for one that grows the file, measured on this box's ext4.
//
// bbolt stays the checkpoint target because it is pure Go, one file, has no background
// compaction competing for the two cores a small gateway gets, and is maintained by etcd.
// Pebble v2.1.7 was measured for issue 13 before: 30,800 msgs/s for 256 writers against
// 49,800 for bbolt behind a group commit, its flushes and compactions taking the CPU the
// writes need.
//
// Measured for issue 13 on the shared 2-core box (load average 10-15, so wall times are
// noisy; bbolt behind the group commit before, this engine after, in the same run):
//   - BenchmarkForward/settle=combined (accept, claim, settle), 20,000 messages: conc=256
//     10,000 -> 21,500 and 15,600 -> 25,400 msgs/s, process CPU 37 -> 31 and 34 -> 29 us per
//     message, 96 -> 78-81 allocs; conc=1 190 -> 737 msgs/s (1.36 ms a message for 1.9
//     commits, one overwriting 4 KiB fdatasync measured 0.48-0.53 ms meanwhile), 366 -> 178
//     allocs. BenchmarkAccept writers=1: 3.5 -> 1.1 ms a message, 196 -> 81 allocs.
//   - scripts/bench --rows 2 --stores embedded --windows 1,100,256, three pairs of runs: W=256
//     13,200 -> 19,500, 12,000 -> 15,500, 14,600 -> 16,000 msgs/s end to end; W=100 6,500 ->
//     17,900, 9,800 -> 12,200, 11,900 -> 13,700; W=1 254 -> 1,694, 416 -> 1,588, 338 -> 1,159.
//     smppgw CPU per message at W=256 is about the same (51 -> 36, 44 -> 43, 43 -> 45 us):
//     fewer and cheaper fsyncs, and pipelining, buy latency, not CPU. Peak RSS 90-110 ->
//     145-190 MB (the memtables).
//   - Profiled at W=256 the store takes ~40% of smppgw's CPU: running ops 16%, merging write
//     sets into active 7%, checkpoints into bbolt 12%; the rest is sockets and GC.
//
// A message costs two writes, both shared by the group commit: AcceptMessage, and Settle
// (the upstream's answer and the Ack together). Claims cost none. What reaches bbolt is two
// keys and a share of a block: the message record, its id map entry, in a generation dropped
// whole once expired (see idmap.go), and its time index entry (account NUL IndexKey; listings
// of all accounts merge the accounts' ranges), which bbolt holds in blocks of an account's
// 67 ms, each written once a checkpoint (round 6, see index.go). Round 3 of issue 13 took away two more: a global
// time index entry, and the id map's expiry index entry with the two sweeper deletes it
// cost later (the sweeper removes at most 10,000 keys a minute, so under a sustained load the
// id map grew without end).
//
// A write set keeps each bucket's keys in a sorted slice, reused from batch to batch (a tree
// allocated its nodes anew for every batch). Active and frozen were trees (tidwall/btree)
// until round 4; they are now the write sets' slices kept as sorted runs (mem.go, addRun).
//
// Queues keep their entries in the store and their claim state in memory, so claiming costs no
// write; everything unacknowledged is claimable again after a restart. An entry published
// while fewer than 8 MiB of payloads are kept also keeps its payload in memory, so claiming
// it reads nothing; a replace or a removal not known to be done drops it, and the claim reads
// the store. Round 2 of issue 13 (write-set slices, kept payloads, checkpoint tombstones
// sought with one cursor), same run, before -> after: BenchmarkForward settle=combined
// conc=256 89-95 -> 63-66 allocs a message, process CPU 38-44 -> 34-35 us a message;
// gateway BenchmarkForward store=embedded 44-51 -> 37-39 cpu-us a message.
//
// Round 3 of issue 13, the store's CPU per message, measured before -> after in the same
// minutes on the shared 2-core box (load average 8-12, so each figure is one of three
// alternating runs, or their mean):
//   - go test -bench 'Forward/settle=combined/conc=256|Accept/writers=256' -benchmem
//     -benchtime 100000x (cpu-us/op is the process's CPU, checkpoints and GC included):
//     Forward 25.3 -> 20.3 cpu-us (means), 71-75 -> 40-45 allocs, 8,960-9,840 -> 6,960-8,380
//     B a message; Accept 13.4 -> 10.3 cpu-us, 39 -> 24 allocs, 5,170 -> 4,010 B. Of the 40,
//     about 13 are bbolt's, inside its Put (a cursor and its stack each): three Puts a
//     message where there were five.
//   - smppgw serve under smppload W=256, upstream the simulator, 20 s: gateway CPU 40.1 ->
//     36.4 us a message (three runs each, alternating); in its profile the checkpoint
//     12.6 -> 10.1% and the stager 15.1 -> 11.1% of the gateway's CPU.
//   - Measured and not kept: a pointer-free arena for the memtables (keys and values in
//     large byte chunks, tree items of offsets), to spare the garbage collector: merges got
//     slower (the tree's comparisons go through the arena) by about what GC saved, and
//     BenchmarkMerge took 1.4-2x as long. bbolt pages of 16 and 64 KiB: no change in CPU.
//
// Round 4 of issue 13, the store's CPU and allocations per forwarded message:
//   - Active and frozen keep each batch's write set slice as a sorted run (mem.go) instead of
//     inserting its keys one by one into a btree: a run is merged in place into the one before
//     it when that moves little (rising keys: message ids, time index, queue sequences) or
//     when it is at least half as long, so a bucket holds about log2(batches) runs; a read
//     looks at the runs newest first (one comparison for a key past a run's end, as every new
//     message id is), a cursor and the checkpoint merge them. The fresh-key rule holds when
//     runs merge. In BenchmarkForward's profile merging a batch went from 7.9% of the CPU to
//     3.8-6.1%, the lookups of accept and settle from 6.5% to 3.1%; BenchmarkMerge from
//     0.67-0.85 to 0.30-0.42 ms, allocating 75 -> 138 KB (a merged run keeps room to spare).
//   - A settle writes its id map key and value, the record and the queue key in one allocation
//     of their size (the record is encoded into the stager's scratch first); an accept likewise
//     its record, payloads, index keys and queue keys (scratch from a pool); the two ops are
//     reused once the group commit is done with them; queue entries come from blocks of 64; a
//     claim's leases share one string. A txn opens bbolt's bucket only when a read reaches
//     bbolt (a batch whose ops find everything in the memtables opens none), and its first
//     handles live in the txn.
//   - Measured, before (a0bd6c3) -> after, alternating in the same minutes on the shared 2-core
//     box (single runs vary by +-10%): go test -run XXX -bench
//     'Forward/settle=combined/conc=(1|256)$|Accept/writers=(1|256)$' -benchmem -benchtime
//     100000x (20000x for conc=1 and writers=1), six pairs at 256: Forward conc=256 17.8 ->
//     16.8 cpu-us/op (means), 43-45 -> 30-33 allocs; Accept writers=256 8.8 -> 8.0 cpu-us/op,
//     24-25 -> 19 allocs; Forward conc=1 104 -> 46 allocs and Accept writers=1 55 -> 24 allocs,
//     their CPU (one fdatasync a write is most of it) 159 -> 163 and 97 -> 88 cpu-us/op, within
//     the noise. In BenchmarkForward's profile the stager's CPU went down 22%, the syncer's 16%
//     and the callers' 13%; the checkpointer's did not (bbolt's). End to end, go run
//     ./cmd/smppbench --rows 2 --stores embedded --windows 256 --messages 1000000 --duration
//     12s --smppgw BIN, three pairs on a quiet box: 21.6, 20.7, 20.5 -> 18.1, 18.5, 19.8 us of
//     smppgw CPU a message (mean 20.9 -> 18.8, -10%), peak RSS about the same (210-245 MB);
//     earlier pairs on a loaded box gave 23.2 -> 21.1.
//   - Not reached: half. What is left of the store is mostly bbolt's: its Put allocates a
//     cursor stack and clones the key (11 of the ~30 allocations a message costs the whole
//     gateway at W=256), and its commit writes the pages; three keys a message reach it
//     (record, time index, id map), and folding two of them into one would need a block
//     format of our own on top of bbolt. Settle still decodes and re-encodes the record: it
//     returns the message (round 5 took the decode away, below). Measured and not kept:
//     freezing at 32 MiB or 2 s instead of 16 MiB or 1 s (no change).
//
// Round 5 of issue 13, settle without the lookup and the decode: the stager keeps each
// accepted message's decoded form (kept.go, up to 2 MiB of them) and a settle takes it,
// applies the update and encodes the record; any other write of the record forgets it first,
// and a rolled back batch forgets what it kept. Measured before (563a929) -> after, alternating
// in the same minutes on the shared 2-core box (load average 4-8):
//   - smppgw serve at W=256 (go run ./cmd/smppbench --rows 2 --stores embedded --windows 256
//     --messages 1000000 --duration 12s --smppgw BIN), nine pairs: 21.3 -> 19.9 us of smppgw
//     CPU a message (means; single runs 16.7-25.2 -> 18.2-23.3, as the box's load moved the
//     throughput between 270,000 and 860,000 messages a run), six pairs of nine lower; in a
//     profile of one run each the stager 17.9 -> 14.4% of the CPU and settleOp.run 10.7 ->
//     6.5%, the copy made at accept 1.4%; GC marking 2.8 -> 4.7% (kept messages live until
//     they are settled).
//   - BenchmarkForwardInFlight (256 callers each accepting, claiming and settling, so at most
//     256 messages wait: a gateway's steady state), three pairs: 14.3 -> 13.9 cpu-us/op
//     (means), 25-26 allocs either way; in its profile the stager 1.02 -> 0.60 s and accept
//     0.27 -> 0.49 s for 300,000 messages.
//   - BenchmarkForward settle=combined conc=256 and BenchmarkAccept writers=256, five pairs:
//     17.1 -> 17.2 and 9.1 -> 9.1 cpu-us/op, 29-31 -> 28-30 and 19 allocs: no change. Their
//     accepts run far ahead of the settles, so the kept messages reach 2 MiB and most settles
//     take the slow path; with 8 MiB (and a map per batch besides, since dropped) the map's
//     lookups and inserts (thousands of entries, out of cache) cost the stager about what the
//     decode they spared did.
//   - Left: the settle still encodes the whole record (AppendMessage, 1.6%), and what
//     reaches bbolt is unchanged (three Puts a message).
//
// Round 6 of issue 13, fewer bbolt Puts and allocations a message:
//   - The time index reaches bbolt as blocks (index.go): the memtables and the WAL keep one
//     key a message, and a checkpoint merges each block it touches with what bbolt holds of it
//     and puts it once; readers see the blocks as bbolt's layer of bIdxAcc, so tombstones
//     (expiry) and listings work as before. Replay writes blocks too, and Open converts the
//     one key a message an older release left in bbolt into blocks, 100,000 keys a transaction
//     (tested: TestBlockIndex, TestOldIndexConverted, TestBlockCursorSeek, TestIndexChanges;
//     each of seven deliberate breaks fails one of them: a merge that drops the block's old
//     entries, one ignoring tombstones, replay ignoring index tombstones or keeping a key's
//     first change, a seek that does not find the block, a cursor writing keys over the ones
//     it gave out, no conversion at Open). By hand: the previous release, killed after 30,000
//     accepts of 3 accounts, left 18,606 index keys in bbolt and the rest in its WAL; this
//     release's Open listed all 30,000 in order and left 135 blocks and no old keys. Keys a message put into bbolt, counted by the
//     checkpoints (bbolt-puts/msg): ForwardInFlight 3.009 -> 2.009 (record and id map; one
//     block for ~110 messages); Forward 3.2 -> 2.5-3.0, its accepts running far ahead of its
//     settles, so many records reach bbolt twice (accepted in one checkpoint, settled in the
//     next) and queue entries as a Put and then a delete; a gateway settles within
//     milliseconds, as ForwardInFlight does: smppgw serve at W=256 (a build counting the
//     checkpoints' Puts by bucket, one run, 250,334 messages) put 1.012 records, 1.000 id map
//     entries and 0.012 queue entries (and deleted as many) a message. Blocks have no size limit: an account's 67 ms at
//     a million messages a second is about 2 MB, rewritten when two checkpoints share it.
//     A listing of 10 pages of 100 from 100,000 checkpointed messages of 4 accounts cost
//     0.85-1.32 -> 1.01-1.78 ms (two runs each; keys are cut from chunks, so allocations are
//     about the same, 2,358-2,788 -> 2,378-2,988 a listing).
//   - A claim's time-outs go into a ring instead of a slice taken from the front and appended
//     at the back (it reallocated and copied as it moved on: Store.take's growslice, 3% of
//     smppgw's CPU), and its results are sized once. A settle's keys and record, which only
//     the memtable keeps, come out of 32 KiB chunks the stager shares among its writes.
//     Measured and not done: accept's allocation out of such chunks (its queue payloads stay
//     in memory while queued, and one entry kept for a dead upstream would pin a whole chunk);
//     keptCopy and DecodePartTask allocate what Settle and ClaimParts hand to their caller.
//   - Measured before (a416ff1) -> after, alternating in the same minutes on the shared 2-core
//     box (load average 3.5-4): go test -run XXX -bench
//     'Forward/settle=combined/conc=256$|Accept/writers=256$' and -bench 'ForwardInFlight$',
//     -benchmem -benchtime 100000x, four pairs: ForwardInFlight 12.7 -> 12.0 cpu-us/op (means),
//     26 -> 22 allocs, 5,780-5,910 -> 5,310-5,430 B; Accept writers=256 8.6 -> 8.2 cpu-us/op,
//     19 -> 16 allocs; Forward conc=256 16.6 -> 17.0 cpu-us/op (single runs 14.7-18.0 either
//     way: no change seen), 28-32 -> 25-28 allocs.
//   - smppgw serve at W=256 (go run ./cmd/smppbench --rows 2 --stores embedded --windows 256
//     --messages 600000 --duration 12s --smppgw BIN --json; CPU seconds of smppgw over messages
//     sent), twelve pairs at load average 3.9-13: 22.0 -> 21.0 us a message (means; single
//     runs 17.1-26.8 -> 17.2-26.9, eight pairs of twelve lower). Allocations (--profile, alloc_objects
//     over messages sent, one run each): 15.4 -> 12.7 a message, of them bbolt's Cursor.search
//     7.8 -> 6.3 and cloneBytes 1.9 -> 2.0 (a profile taken before the last checkpoint counts
//     a varying share of the checkpoints), updatePart 1.0 -> 0; in the CPU profile the
//     checkpoint 12.1 -> 10.1% and Store.take 1.3 -> 0.6%.
//   - Left: the two Puts a message (bbolt's Put makes a cursor whose stack grows from nil, and
//     clones the key: about 4.5 allocations each, 9 of the ~12.7 a message end to end), and
//     bbolt's commit; folding the record or the id map into blocks would need lookups by id
//     in them.
//
// It must not be opened by two processes at once (bbolt's file lock refuses the second, and
// guards the WAL too), and it does not replicate: use store/redis for several gateway instances.
package embedded
