package pdu

import (
	"errors"
	"testing"
	"time"
)

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 11, 21, 22, 31, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Time
	}{
		{"", time.Time{}},
		{"261121223100000+", time.Date(2026, 11, 21, 22, 31, 0, 0, time.UTC)},
		{"261121223159508+", time.Date(2026, 11, 21, 20, 31, 59, 500e6, time.UTC)}, // 8 quarter hours ahead of UTC
		{"261121223100004-", time.Date(2026, 11, 21, 23, 31, 0, 0, time.UTC)},
		{"000001000000000R", now.AddDate(0, 0, 1)},
		{"000000013000000R", now.Add(90 * time.Minute)},
		{"010200000000000R", now.AddDate(1, 2, 0)},
	}
	for _, tt := range tests {
		got, err := ParseTime(tt.in, now)
		if err != nil || !got.Equal(tt.want) {
			t.Errorf("ParseTime(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"26112122310000+", "2611212231000000", "2613212231000000+", "261131223100000+", "260230000000000+",
		"2611212a3100000+", "261121223100049+", "26112122310x000+", "261121223100000X"} {
		if _, err := ParseTime(bad, now); !errors.Is(err, ErrTimeFormat) {
			t.Errorf("ParseTime(%q) err = %v, want ErrTimeFormat", bad, err)
		}
	}
}

func TestAppendTime(t *testing.T) {
	loc := time.FixedZone("", 2*3600)
	abs := time.Date(2026, 11, 21, 22, 31, 59, 500e6, loc)
	if got := string(AppendAbsoluteTime(nil, abs)); got != "261121223159508+" {
		t.Errorf("AppendAbsoluteTime = %q", got)
	}
	if got := string(AppendAbsoluteTime(nil, abs.In(time.FixedZone("", -3600)))); got != "261121193159504-" {
		t.Errorf("AppendAbsoluteTime west = %q", got)
	}
	back, err := ParseTime(string(AppendAbsoluteTime(nil, abs)), time.Time{})
	if err != nil || !back.Equal(abs) {
		t.Errorf("round trip: %v %v", back, err)
	}
	if got := string(AppendRelativeTime(nil, 36*time.Hour+90*time.Second)); got != "000001120130000R" {
		t.Errorf("AppendRelativeTime = %q", got)
	}
	if got := string(AppendRelativeTime(nil, 400*24*time.Hour)); got != "010105000000000R" {
		t.Errorf("AppendRelativeTime(400d) = %q", got)
	}
}

func FuzzParseTime(f *testing.F) {
	for _, s := range []string{"", "261121223100000+", "261121223159508+", "000001000000000R", "991231235959948-", "xx"} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseTime(s, now)
		if err != nil {
			if !errors.Is(err, ErrTimeFormat) {
				t.Fatalf("error %v does not wrap ErrTimeFormat", err)
			}
			return
		}
		if s != "" && s[15] != 'R' {
			// An absolute time written back in its own offset reads the same instant.
			again, err := ParseTime(string(AppendAbsoluteTime(nil, got)), now)
			if err != nil || !again.Equal(got) {
				t.Fatalf("%q -> %v -> %q -> %v, %v", s, got, AppendAbsoluteTime(nil, got), again, err)
			}
		}
	})
}
