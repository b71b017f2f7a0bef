// Package sim is a TiDB cluster in a box: it runs TiKV stores, tenants,
// databases and tables on a simulated clock and writes exactly what real
// stores would push to data_change_buffer/: store change files with
// Percolator prewrites, commits, rollbacks and 1PC rows in real TiDB
// encodings, resolved ts per region following TiKV's rule, and region
// splits, merges and leader transfers while transactions are in flight.
//
// Alongside, it writes the truth: every committed row change (JSON Lines, see
// libs/truth), which the checker (libs/verify) compares pulled streams with.
//
// Everything is derived from one seeded random source and the simulated
// clock, so a seed reproduces the same files byte for byte (unless Realtime
// paces the clock to the wall clock for a live fleet). Every behaviour below
// is off by default (its Config field is 0), and a behaviour that is off
// draws nothing from the random source, so turning new behaviours into the
// simulator never changes the files of existing seeds. Config.EnableChaos
// and ChaosConfig turn them all on at moderate rates.
//
// # Store crashes and takeovers (CrashEvery, CrashDown)
//
// The simulator is the reference producer of the store-change-file spec's
// takeover (docs/formats/store-change-file.md, "Takeover of a crashed
// leader's incarnations"). About every CrashEvery a store is picked to
// crash; it crashes at a random tick of its next file. The crash loses the
// store's open file (one per tenant) — rows, resolved ts and region changes
// alike — and the store uploads nothing until it restarts CrashDown later.
// Raft state is not lost: the splits, merges and transfers it applied stand,
// and transactions in flight go on, their later records written by the new
// leaders (locks move with the regions).
//
// For what the lost files held, new leaders write, per the spec:
//
//   - For each region the crashed store led, a new leader is elected among
//     its other peers that are up, at a new term. It writes its START
//     (REASON_LEADER_TRANSFER) naming what a reader knows precedes it — the
//     incarnation whose START was uploaded; for a region that a lost split,
//     merge or rolled-back merge made, the predecessors that region's lost
//     START named — then every row event of the region's keys the lost file
//     held, in order, then a takeover END (REASON_TAKEOVER) of every
//     incarnation a reader knows whose END was never uploaded, with the
//     greatest resolved ts it uploaded and takeover {crashed store, its last
//     uploaded file, which lists or carries the incarnation}. The parts of a
//     lost split are taken over together by one new leader, so the parent's
//     single takeover END follows all of its lost rows.
//   - A transfer away from the crashed store, or a merge whose source it
//     led into a target another store leads, whose END was lost: the
//     successor's leader already started its incarnation naming the ended
//     one, so it writes the lost rows and the takeover END after it.
//   - Forms, chosen at random per takeover: partial (only the lost rows) and
//     full (first the rows the crashed store's last uploaded file holds of
//     each incarnation taken over again: duplicates). Cascaded: sometimes a
//     second store is picked with the first and crashes right after it,
//     before its next cut, having taken some of its regions over; the next
//     leader then takes over, again, what a reader knows (the first store's
//     incarnations, never the lost STARTs of the second) and writes the rows
//     of both lost files. Any crash of a store whose open file holds
//     takeovers works the same way.
//   - A restarted store continues its stream at the seq after its last
//     uploaded file (prev_max_ts of that file), its first file lists no
//     leader (a full list, never a delta against one from before the
//     crash), and it becomes a candidate for transfers and elections again.
//
// Stats counts crashes, restarts, takeovers by form (partial, full,
// cascaded, of lost ENDs), takeover ENDs uploaded and the split, merge and
// transfer ENDs the crashes lost. Readers that read the stores in random
// order see takeover ENDs before the crashed store's files, as they must
// cope with.
//
// Restrictions, which keep every combination takeover-able without
// changing what TiKV would write:
//
//   - From the moment a crash is planned until the store crashes, no
//     leadership is transferred to it (only elections in takeovers), and a
//     region that one of its splits, merges or transfers made or ended takes
//     part in no other split, merge or transfer until that record is
//     uploaded or lost; so a lost file holds at most one region change per
//     region besides takeovers. Such an operation also needs the regions'
//     STARTs uploaded, no second store about to crash involved, and
//     resolved ts published only at cuts (ResolveEvery >= FlushInterval),
//     so that the leader of a successor has published no resolved ts of its
//     own before it writes the rows of a lost END it takes over; otherwise
//     the operation waits.
//   - A crash happens between cuts, never during an upload (the spec's
//     "may or may not be there" file), and CrashDown is at least one flush
//     interval, so a restarted store never takes over its own old
//     incarnation (takeover.store_id = itself does not occur).
//   - A crash needs another peer up for every region the store leads; at
//     least one store is never down or about to crash.
//
// # File format (FormatVersion, FullListEvery)
//
// Format version 2 (the default) costs what changes, not what a store
// leads, in the files and in the simulator: a stream's headers list its
// leaders in full in its first file, after a restart and every
// FullListEvery files, as a delta against the last full list otherwise
// (storefile.Leaders), and a resolve round is one LeaderResolvedTs per
// stream plus the ts of each region holding a lock below the TSO (the only
// regions that can lag it). A region's resolved ts is therefore not stored
// per round: its fields hold what it was last given one by one, and the
// rounds of its leader stream that covered it add on top (resolved.go).
// Cuts touch only the regions that changed since the previous cut. Format
// version 1 writes every leader in every header and names every region in
// resolved ts records, byte for byte what the version 1 writer wrote.
//
// # Lock refreshes (HeartbeatEvery)
//
// While a long-running, large or pipelined transaction holds its primary
// lock, the leader of the primary key's region writes, every HeartbeatEvery,
// a PREWRITE of the primary key with op PUT and an empty value, the same
// start_ts and generation (TiKV's TxnHeartBeat; TiCDC's "fake prewrite").
// After a transfer or crash it lands in another store's stream than the
// value.
//
// # Pipelined DML (PipelinedEvery, PipelinedGenerations)
//
// A pipelined transaction prewrites its keys with generation 1, then, 250 to
// 750 ms apart, up to PipelinedGenerations-1 more times a subset of them
// with the next generation and a new value (some existing rows are deleted in
// the last one), then commits with 2PC. Only the highest generation of each
// key is in the truth; generations often land in different files and, around
// transfers and crashes, in different stores' streams.
//
// # Rolled-back merges (RollbackMergeRatio)
//
// That share of merges is rolled back after the source's END: the source's
// leader starts (source, version+2) with REASON_ROLLBACK_MERGE naming the
// ended incarnation; the target is untouched.
//
// # Checks
//
// The package's tests decode every file with the spec'd reader, resolve
// repeated prewrites with the spec's rank rule, count takeover duplicates
// once, prove the truth exact, and check on the files alone the spec's
// producer rules: sequence and header continuity (restarts included),
// TiKV's resolved ts rule, successors committing above their predecessors
// (rule 2), every started incarnation ending exactly once and no START
// naming one whose START was never uploaded (rule 3), and every takeover
// END naming its leader's store, a through_seq file that mentions the
// incarnation and the resolved ts that store uploaded.
package sim
