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
// paces the clock to the wall clock for a live fleet).
package sim
