// Package sortbuftest holds what tests of sortbuf and its callers share:
// the contract every sortbuf.Store implementation must pass (RunContract,
// run against the Pebble Engine and the in-memory Memory alike) and the
// standard sorter workload of the benchmarks (NewStandardWorkload), so that
// sortbuf's and txnmatch's figures compare with each other and with TiCDC's
// sorter.
package sortbuftest
