package cases

import (
	"testing"

	"meshconform/internal/apitest"
)

func TestMain(m *testing.M) { apitest.Main(m) }
