package store_test

import (
	"testing"

	"github.com/pursuance/pursuance/store"
	"github.com/pursuance/pursuance/store/storetest"
)

func TestMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return store.NewMemory() })
}
