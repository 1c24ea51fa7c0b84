package report

import (
	"fmt"
	"io"
	"slices"
	"sort"
)

// Spread is one measured quantity over several runs of the same thing (a benchmark's
// repetitions): how many runs measured it and its minimum, median and maximum, in seconds.
type Spread struct {
	Name             string
	N                int
	Min, Median, Max float64
}

// TimingSpreads lays the timings of several runs side by side: each phase of the run, the
// run's total, then each spec (its whole time and each part it measured), named as in the
// reports. A quantity appears when at least one run measured it; N says how many did, so a
// phase some runs lack (a cluster reused) is not averaged with zeros.
func TimingSpreads(runs []Report) []Spread {
	values := map[string][]float64{}
	var order []string
	add := func(name string, v float64) {
		if _, ok := values[name]; !ok {
			order = append(order, name)
		}
		values[name] = append(values[name], v)
	}
	for _, r := range runs {
		if r.Timings == nil {
			continue
		}
		for _, p := range r.Timings.Phases {
			add("phase "+p.Name, p.DurationSeconds)
		}
		if r.Timings.TotalSeconds != nil {
			add("total", *r.Timings.TotalSeconds)
		}
	}
	var specs []string
	specValues := map[string][]float64{}
	for _, r := range runs {
		for _, b := range r.Behaviors {
			for _, s := range b.Specs {
				if s.Timings == nil {
					continue // left out or not measured: nothing to spread
				}
				parts := []struct {
					name string
					v    *float64
				}{{"", &s.DurationSeconds}, {"setup", s.Timings.SetupSeconds}, {"convergence", s.Timings.ConvergenceSeconds},
					{"mesh wait", s.Timings.MeshWaitSeconds}, {"teardown", s.Timings.TeardownSeconds}}
				for _, p := range parts {
					if p.v == nil {
						continue
					}
					name := "spec " + s.Name
					if p.name != "" {
						name += " · " + p.name
					}
					if _, ok := specValues[name]; !ok {
						specs = append(specs, name)
					}
					specValues[name] = append(specValues[name], *p.v)
				}
			}
		}
	}
	var out []Spread
	for _, n := range order {
		out = append(out, spread(n, values[n]))
	}
	sort.SliceStable(specs, func(i, j int) bool { return specs[i] < specs[j] })
	for _, n := range specs {
		out = append(out, spread(n, specValues[n]))
	}
	return out
}

func spread(name string, v []float64) Spread {
	s := slices.Clone(v)
	slices.Sort(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Spread{Name: name, N: len(s), Min: s[0], Median: roundSeconds(med), Max: s[len(s)-1]}
}

// WriteSpreads prints the spreads as a table: runs, min, median, max, then the name.
func WriteSpreads(w io.Writer, runs int, rows []Spread) {
	fmt.Fprintf(w, "%d run(s); seconds\n%4s %9s %9s %9s  %s\n", runs, "n", "min", "median", "max", "what")
	for _, r := range rows {
		fmt.Fprintf(w, "%4d %9.3f %9.3f %9.3f  %s\n", r.N, r.Min, r.Median, r.Max, r.Name)
	}
}
