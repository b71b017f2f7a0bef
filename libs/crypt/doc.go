// Package crypt is customer-managed-key (CMEK) encryption of a tenant's
// objects: an objstore.Store wrapper (Wrap) that seals every object a
// tenant owns in an envelope (docs/formats/encryption.md) when the tenant
// has a key-encryption key (KEK), and opens envelopes on read, so the pool,
// the sorter snapshots and the schema history are covered without their
// writers or readers knowing.
//
// Keys come in two layers. A KEK lives in a KMS and never leaves it: the
// KMS interface only wraps and unwraps data keys with it. Two KMSes
// implement it, held to one contract: LocalKMS (refs "local:NAME", a
// directory of key files) and AWSKMS (refs "aws-kms:KEY-ID-OR-ARN"). A data
// key is 32 random bytes, wrapped once and reused for a bounded time by the
// writer; every object gets its own AES-256-GCM key derived from the data
// key and a random per-object salt, so no two objects share a key and the
// KMS is not called per object.
//
// Revocation: a disabled or deleted KEK makes every read and write of the
// tenant's encrypted objects fail with an error matching ErrKeyDisabled or
// ErrKeyNotFound (a *KeyError naming the tenant and the key) once the
// cached data keys expire (Options.KeyTTL); Status maps it to gRPC
// FAILED_PRECONDITION at a service boundary. Other tenants are unaffected.
package crypt
