// Package wal is the embedded store's write-ahead log: records appended to segment files in
// one directory, each made durable with one write and one fdatasync before Append returns.
//
// A record is [len u32][crc32c u32][payload], payload = [lsn u64][body], little-endian, the
// CRC over the payload. LSNs (log sequence numbers) rise by one per record across segments; a
// segment is named by its first LSN (%016x.log), so a checkpoint that covers every LSN below
// a segment's first can remove all the segments before it by name alone.
//
// Replay reads each segment up to its first torn or bad record: its writer was never answered
// (the fdatasync did not return), so what follows in that segment is not trusted. It goes on
// with the next segment, which Append starts after a failed write.
//
// A segment a checkpoint covered is kept (renamed *.free) and reused by a later roll: writing
// over bytes already in the file spares the zero-filling a new segment needs to make an
// fdatasync cheap (see reserve). Replay stops at the first record whose LSN is not the next
// one, which is where a reused segment's old records begin.
//
// The package knows nothing of what a body holds; it must not be used by two processes at once
// (the embedded store's bbolt file lock guards it).
package wal
