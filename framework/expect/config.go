// Package expect waits for probes to show the expected outcome N times in a row and
// classifies what they showed against the catalog: documented, equivalent or deviation.
// It is the only framework package that imports Gomega (see matchers.go).
package expect

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The run's variables ParseConfig's errors name (framework/settings reads them).
const (
	EnvConsecutive = "MESHCONFORM_CONSECUTIVE"
	EnvTimeout     = "MESHCONFORM_TIMEOUT"
	EnvPoll        = "MESHCONFORM_POLL"
)

// Config says how long to wait and how many matching outcomes in a row count as converged.
// Istio's own tests converge 3 times in a row; gateway-api's conformance also uses 3.
type Config struct {
	Consecutive int
	Timeout     time.Duration
	Poll        time.Duration
}

// DefaultConfig is 3 in a row, within 60s, polling every 250ms.
func DefaultConfig() Config {
	return Config{Consecutive: 3, Timeout: 60 * time.Second, Poll: 250 * time.Millisecond}
}

// Validate says which field is out of range.
func (c Config) Validate() error {
	switch {
	case c.Consecutive < 1:
		return fmt.Errorf("expect: Consecutive = %d, want ≥ 1", c.Consecutive)
	case c.Timeout <= 0:
		return fmt.Errorf("expect: Timeout = %v, want > 0", c.Timeout)
	case c.Poll <= 0:
		return fmt.Errorf("expect: Poll = %v, want > 0", c.Poll)
	}
	return nil
}

func (c Config) String() string {
	return fmt.Sprintf("%d in a row within %v, every %v", c.Consecutive, c.Timeout, c.Poll)
}

// ParseConfig is DefaultConfig with the run's MESHCONFORM_CONSECUTIVE (a whole number),
// MESHCONFORM_TIMEOUT and MESHCONFORM_POLL (Go durations: 90s, 2m, 500ms) applied, as
// framework/settings holds them; empty leaves the default. Errors name the variable.
func ParseConfig(consecutive, timeout, poll string) (Config, error) {
	c := DefaultConfig()
	if v := strings.TrimSpace(consecutive); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return c, fmt.Errorf("%s=%q: want a whole number ≥ 1 (example: %s=3)", EnvConsecutive, consecutive, EnvConsecutive)
		}
		c.Consecutive = n
	}
	dur := func(name, raw, example string, dst *time.Duration) error {
		v := strings.TrimSpace(raw)
		if v == "" {
			return nil
		}
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("%s=%q: want a positive Go duration (example: %s=%s)", name, raw, name, example)
		}
		*dst = d
		return nil
	}
	if err := dur(EnvTimeout, timeout, "90s", &c.Timeout); err != nil {
		return c, err
	}
	if err := dur(EnvPoll, poll, "500ms", &c.Poll); err != nil {
		return c, err
	}
	return c, nil
}

// Mode decides which classifications pass.
type Mode int

const (
	// Default passes documented and equivalent outcomes and fails on deviations; the report
	// lists the equivalents.
	Default Mode = iota
	// Strict passes only what the documents print.
	Strict
)

func (m Mode) String() string {
	if m == Strict {
		return "strict"
	}
	return "default"
}

// Accepts reports whether a classification passes in this mode.
func (m Mode) Accepts(c Classification) bool {
	switch c {
	case Documented:
		return true
	case Equivalent:
		return m == Default
	default:
		return false
	}
}
