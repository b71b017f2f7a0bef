// Package objstoretest is the contract every objstore.Store implementation
// must meet, as one test suite: RunContract. Each implementation's tests call
// it with a constructor for a fresh, empty store, so Memory, LocalFS and S3
// are held to exactly the same behaviour.
package objstoretest
