package bench

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// pprofFile is what the tests read of a saved profile (profile.proto of google/pprof).
type pprofFile struct {
	types    []string // sample_type as "type/unit"
	samples  int
	duration time.Duration
	funcs    []string // function names
}

// readPprof reads a gzipped profile.proto, field by field.
func readPprof(path string) (pprofFile, error) {
	var p pprofFile
	raw, err := os.ReadFile(path)
	if err != nil {
		return p, err
	}
	if len(raw) < 2 || raw[0] != 0x1f || raw[1] != 0x8b {
		return p, fmt.Errorf("%s: not gzip", path)
	}
	zr, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return p, err
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		return p, err
	}
	var (
		strs      []string
		typeIdx   [][2]uint64
		funcNames []uint64
	)
	fields := func(b []byte, f func(num protowire.Number, typ protowire.Type, v []byte, n uint64) error) error {
		for len(b) > 0 {
			num, typ, l := protowire.ConsumeTag(b)
			if l < 0 {
				return protowire.ParseError(l)
			}
			b = b[l:]
			var (
				v []byte
				n uint64
			)
			switch typ {
			case protowire.VarintType:
				n, l = protowire.ConsumeVarint(b)
			case protowire.BytesType:
				v, l = protowire.ConsumeBytes(b)
			default:
				l = protowire.ConsumeFieldValue(num, typ, b)
			}
			if l < 0 {
				return protowire.ParseError(l)
			}
			b = b[l:]
			if err := f(num, typ, v, n); err != nil {
				return err
			}
		}
		return nil
	}
	err = fields(b, func(num protowire.Number, typ protowire.Type, v []byte, n uint64) error {
		switch num {
		case 1: // sample_type: ValueType{type = 1, unit = 2}
			var t [2]uint64
			if err := fields(v, func(num protowire.Number, _ protowire.Type, _ []byte, n uint64) error {
				if num == 1 || num == 2 {
					t[num-1] = n
				}
				return nil
			}); err != nil {
				return err
			}
			typeIdx = append(typeIdx, t)
		case 2: // sample
			p.samples++
		case 5: // function: name = 2
			return fields(v, func(num protowire.Number, _ protowire.Type, _ []byte, n uint64) error {
				if num == 2 {
					funcNames = append(funcNames, n)
				}
				return nil
			})
		case 6: // string_table
			strs = append(strs, string(v))
		case 10: // duration_nanos
			p.duration = time.Duration(n)
		}
		return nil
	})
	if err != nil {
		return p, fmt.Errorf("%s: %w", path, err)
	}
	str := func(i uint64) string {
		if i < uint64(len(strs)) {
			return strs[i]
		}
		return "?"
	}
	for _, t := range typeIdx {
		p.types = append(p.types, str(t[0])+"/"+str(t[1]))
	}
	for _, i := range funcNames {
		p.funcs = append(p.funcs, str(i))
	}
	if len(p.types) == 0 {
		return p, errors.New(path + ": no sample types")
	}
	return p, nil
}

// checkProfiles reads dir/name's two profiles: a CPU profile of smppgw's own code over the window
// cpuWindow gives, with samples when busy is set, and an allocs profile with samples.
func checkProfiles(t *testing.T, r *runner, dir, name string, busy bool) {
	t.Helper()
	_, secs := r.cpuWindow()
	cpu, err := readPprof(filepath.Join(dir, name+".cpu.pprof"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cpu.types, []string{"samples/count", "cpu/nanoseconds"}) {
		t.Errorf("%s CPU profile sample types %v", name, cpu.types)
	}
	if want := time.Duration(secs) * time.Second; cpu.duration < want || cpu.duration > want+5*time.Second {
		t.Errorf("%s CPU profile over %s, want %s", name, cpu.duration, want)
	}
	if busy && (cpu.samples == 0 || !slices.ContainsFunc(cpu.funcs, func(f string) bool { return strings.HasPrefix(f, "github.com/smppgw/smppgw/") })) {
		t.Errorf("%s CPU profile: %d samples, none in smppgw's code among %d functions", name, cpu.samples, len(cpu.funcs))
	}
	allocs, err := readPprof(filepath.Join(dir, name+".allocs.pprof"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(allocs.types, []string{"alloc_objects/count", "alloc_space/bytes", "inuse_objects/count", "inuse_space/bytes"}) || allocs.samples == 0 {
		t.Errorf("%s allocs profile: sample types %v, %d samples", name, allocs.types, allocs.samples)
	}
}

// TestRunProfile is --profile on row 2 (embedded, W=10) sending for 2s: the CPU profile covers 1s of
// the sending, the allocs profile is taken at the end, the row's note says so, and the smppgw binary
// the profiles symbolize against is kept beside them.
func TestRunProfile(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := filepath.Join(t.TempDir(), "profiles") // created by Run
	cfg := Config{Rows: []int{RowIngress}, Stores: []string{StoreEmbedded}, Windows: []int{10}, Messages: 1_000_000,
		Duration: 2 * time.Second, ProfileDir: dir, WorkDir: t.TempDir()}
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) != 1 || res.Rows[0].Err != "" {
		t.Fatalf("rows %+v", res.Rows)
	}
	row := res.Rows[0]
	if want := "allocs at the end: " + filepath.Join(dir, "row2-embedded-w10") + ".{cpu,allocs}.pprof"; !strings.Contains(row.Note, want) {
		t.Errorf("note %q lacks %q", row.Note, want)
	}
	if row.Acked == 0 || row.Received != row.Acked {
		t.Errorf("sent %d acked %d received %d", row.Sent, row.Acked, row.Received)
	}
	if res.ProfileDir != dir || res.Smppgw != filepath.Join(dir, "smppgw") {
		t.Errorf("result profile dir %q, smppgw %q", res.ProfileDir, res.Smppgw)
	}
	if st, err := os.Stat(res.Smppgw); err != nil || st.Mode()&0o100 == 0 {
		t.Errorf("smppgw binary %v %v", st, err)
	}
	checkProfiles(t, &runner{cfg: cfg.withDefaults()}, dir, "row2-embedded-w10", true)
	var tab bytes.Buffer
	if err := res.WriteTable(&tab); err != nil || !strings.Contains(tab.String(), "profiles in "+dir) {
		t.Errorf("table header lacks the profile dir: %v\n%s", err, tab.String())
	}
}
