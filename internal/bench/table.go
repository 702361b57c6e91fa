package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

var columns = []string{"row", "what", "W", "msgs/s", "intake/s", "p50 ms", "p99 ms", "CPU s", "peak RSS", "x row 1", "sent / acked / at upstream", "queue start / mid / end / max", "queue", "note"}

// cells is the row as the table shows it.
func (r Row) cells() []string {
	dash := func(ok bool, s string) string {
		if !ok {
			return "-"
		}
		return s
	}
	w := "-"
	if r.Window > 0 {
		w = strconv.Itoa(r.Window)
	}
	note := r.Note
	if r.Err != "" {
		note = "ERROR: " + r.Err
		if r.Note != "" {
			note += "; " + r.Note
		}
	}
	ran := !r.Skipped
	counts := "-"
	if ran {
		counts = fmt.Sprintf("%d / %d", r.Sent, r.Acked)
		if r.Received > 0 || r.Group == RowIngress || r.Group == RowClients || r.Group == RowFullPath || r.Group == RowIdle || r.Group == RowSustain {
			counts += fmt.Sprintf(" / %d", r.Received)
		}
	}
	depth, verdict := "-", "-"
	if s := r.Sustained; ran && s != nil && len(s.Samples) > 0 {
		depth, verdict = s.cell(), orDash(s.Verdict)
	}
	return []string{
		strconv.Itoa(r.Group), r.Name, w,
		dash(ran && r.Rate > 0, fmt.Sprintf("%.0f", r.Rate)),
		dash(ran && r.Intake > 0, fmt.Sprintf("%.0f", r.Intake)),
		dash(ran && r.P50 > 0, fmt.Sprintf("%.3f", r.P50)),
		dash(ran && r.P99 > 0, fmt.Sprintf("%.3f", r.P99)),
		dash(ran && r.RSS > 0, fmt.Sprintf("%.2f", r.CPU)),
		dash(ran && r.RSS > 0, mb(r.RSS)),
		dash(r.Ratio > 0, fmt.Sprintf("%.2f", r.Ratio)),
		counts,
		depth, verdict,
		oneLine(note),
	}
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// header is the lines above the table.
func (res Result) header() string {
	h := fmt.Sprintf("smppbench: %d CPUs, load average %s at the start, %s at the end; %d messages a row, sending capped at %s a row; %.0fs in all",
		res.CPUs, res.Load, res.LoadEnd, res.Messages, res.Duration, res.Seconds)
	if res.Sustain != "" {
		h += fmt.Sprintf("; row 7 sustained for %s", res.Sustain)
	}
	if res.ProfileDir != "" {
		h += fmt.Sprintf("; profiles in %s (go tool pprof %s FILE)", res.ProfileDir, res.Smppgw)
	}
	return h
}

// legend explains the columns.
const legend = `msgs/s: end to end for rows through smppgw (messages received by the upstream simulator over first submit to
last arrival), acknowledged per second otherwise. intake/s: submit_sm_resp (Submit replies) per second. p50/p99:
submit -> answer. CPU s and peak RSS: the system under test's own process (smppgw, not the load client).
x row 1: msgs/s over row 1's at the same W (at the largest W for rows without one). Row 7 (sustained): msgs/s is
what the upstream received while the load was on over that time; queue: smppgw's queue depth towards the upstream
(smppgw_queue_depth) at the first reading under load, the middle, the end of the sending and its largest, and the
verdict, flat when the end depth and the second half's least-squares trend are both at most 1,000 or 1 s of intake.`

// WriteTable writes the result as an aligned text table.
func (res Result) WriteTable(w io.Writer) error {
	fmt.Fprintln(w, res.header())
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(columns, "\t")+"\t")
	for _, r := range res.Rows {
		fmt.Fprintln(tw, strings.Join(r.cells(), "\t")+"\t")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, legend)
	return err
}

// WriteMarkdown writes the result as a Markdown table.
func (res Result) WriteMarkdown(w io.Writer) error {
	fmt.Fprintf(w, "%s\n\n", res.header())
	fmt.Fprintf(w, "| %s |\n", strings.Join(columns, " | "))
	align := make([]string, len(columns))
	for i := range align {
		align[i] = "---"
		if i >= 2 && i <= 9 {
			align[i] = "---:"
		}
	}
	fmt.Fprintf(w, "|%s|\n", strings.Join(align, "|"))
	for _, r := range res.Rows {
		c := r.cells()
		for i := range c {
			c[i] = strings.ReplaceAll(c[i], "|", `\|`)
		}
		fmt.Fprintf(w, "| %s |\n", strings.Join(c, " | "))
	}
	_, err := fmt.Fprintf(w, "\n%s\n", legend)
	return err
}

// WriteJSON writes the result as one indented JSON object.
func (res Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(res)
}
