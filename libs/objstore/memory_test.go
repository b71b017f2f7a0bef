package objstore_test

import (
	"testing"

	"github.com/tistream/tistream/libs/objstore"
	"github.com/tistream/tistream/libs/objstore/objstoretest"
)

func TestMemoryContract(t *testing.T) {
	objstoretest.RunContract(t, func(*testing.T) objstore.Store { return objstore.NewMemory() })
}
