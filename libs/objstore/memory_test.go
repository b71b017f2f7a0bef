package objstore_test

import (
	"testing"

	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/objstore/objstoretest"
)

func TestMemoryContract(t *testing.T) {
	objstoretest.RunContract(t, func(*testing.T) objstore.Store { return objstore.NewMemory() })
}

// onlyStore hides every method but objstore.Store's, as a wrapper that
// embeds the interface does.
type onlyStore struct{ objstore.Store }

// A store without objstore.PartsPutter gets the parts joined, through its
// Put and PutIfAbsent, and meets the same contract.
func TestJoinedPartsContract(t *testing.T) {
	objstoretest.RunContract(t, func(*testing.T) objstore.Store { return onlyStore{objstore.NewMemory()} })
}
