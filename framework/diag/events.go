package diag

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// events writes the namespace's events, oldest first, as a table a person reads.
func (d *dumper) events(ctx context.Context, ns string) {
	cctx, cancel := d.call(ctx)
	defer cancel()
	list, err := d.kube.CoreV1().Events(ns).List(cctx, metav1.ListOptions{})
	if err != nil {
		d.noteErr("events in %s: %v", ns, err)
		return
	}
	d.write(filepath.Join(ns, "events.txt"), []byte(EventTable(list.Items)))
}

// EventTable renders events sorted by when they last happened (oldest first): time, type,
// reason, object, count, source, message.
func EventTable(events []corev1.Event) string {
	evs := append([]corev1.Event(nil), events...)
	sort.SliceStable(evs, func(i, j int) bool {
		ti, tj := eventTime(&evs[i]), eventTime(&evs[j])
		if !ti.Equal(tj) {
			return ti.Before(tj)
		}
		return evs[i].Name < evs[j].Name
	})
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "LAST SEEN (UTC)\tTYPE\tREASON\tOBJECT\tCOUNT\tSOURCE\tMESSAGE")
	for i := range evs {
		e := &evs[i]
		t := eventTime(e)
		when := "-"
		if !t.IsZero() {
			when = t.UTC().Format(time.RFC3339)
		}
		obj := strings.ToLower(e.InvolvedObject.Kind) + "/" + e.InvolvedObject.Name
		if e.InvolvedObject.FieldPath != "" {
			obj += " (" + e.InvolvedObject.FieldPath + ")"
		}
		count := e.Count
		if e.Series != nil && e.Series.Count > count {
			count = e.Series.Count
		}
		if count == 0 {
			count = 1
		}
		src := e.Source.Component
		if src == "" {
			src = e.ReportingController
		}
		if src == "" {
			src = "-"
		}
		msg := strings.Join(strings.Fields(e.Message), " ") // one line per event
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", when, orDash(e.Type), orDash(e.Reason), obj, count, src, msg)
	}
	tw.Flush()
	if len(evs) == 0 {
		b.WriteString("(no events)\n")
	}
	return b.String()
}

// eventTime is the latest time an event carries: series, eventTime, lastTimestamp,
// firstTimestamp, creation, in that order of preference.
func eventTime(e *corev1.Event) time.Time {
	switch {
	case e.Series != nil && !e.Series.LastObservedTime.IsZero():
		return e.Series.LastObservedTime.Time
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	case !e.FirstTimestamp.IsZero():
		return e.FirstTimestamp.Time
	default:
		return e.CreationTimestamp.Time
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
