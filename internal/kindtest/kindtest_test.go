package kindtest

import "testing"

// FreePorts never returns one port twice. Two FreePort calls in a row (each closing its
// listener before the next) returned the same port about once in 10,000 here, so 50,000
// pairs would catch that with a probability of about 99%.
func TestFreePortsAreDistinct(t *testing.T) {
	for i := range 50000 {
		if p := FreePorts(t, 2); p[0] == p[1] {
			t.Fatalf("pair %d: port %d twice", i, p[0])
		}
	}
}
