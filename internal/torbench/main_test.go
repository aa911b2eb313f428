package torbench

import (
	"testing"

	"github.com/pursuance/pursuance/internal/tortest"
)

func TestMain(m *testing.M) { tortest.Main(m) }
