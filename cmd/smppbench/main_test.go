package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smppgw/smppgw/internal/bench"
)

func TestMain(m *testing.M) {
	bench.Child()
	os.Exit(m.Run())
}

func TestUsage(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"--help"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "--windows") || !strings.Contains(out.String(), "-profile") {
		t.Errorf("--help: %d\n%s", code, out.String())
	}
	for _, args := range [][]string{{"--rows", "9"}, {"--windows", "x"}, {"--nope"}, {"extra"}, {"--stores", "mongo"}} {
		errb.Reset()
		if code := run(args, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2\n%s", args, code, errb.String())
		}
	}
}

// TestCeilingRow runs row 1 alone, small, and writes the Markdown table.
func TestCeilingRow(t *testing.T) {
	md := filepath.Join(t.TempDir(), "bench.md")
	var out, errb bytes.Buffer
	code := run([]string{"--rows", "1", "--windows", "10", "--messages", "500", "--quiet", "--out", md}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	b, err := os.ReadFile(md)
	if err != nil || !strings.Contains(string(b), "| 1 | smppload -> bare stdlib responder | 10 |") || !strings.Contains(out.String(), "500 / 500") {
		t.Errorf("%v\n%s\n%s", err, b, out.String())
	}
}
