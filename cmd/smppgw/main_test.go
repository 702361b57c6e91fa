package main

import (
	"bytes"
	"net"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

var loopback = &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 40000}

func runCLI(args []string, stdin string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestHelp(t *testing.T) {
	for _, arg := range []string{"--help", "-h", "help"} {
		code, out, _ := runCLI([]string{arg}, "")
		if code != 0 || !strings.Contains(out, "smppgw serve [--config FILE]") || !strings.Contains(out, "hash-password") {
			t.Errorf("smppgw %s: code %d, output %q", arg, code, out)
		}
	}
	code, out, _ := runCLI([]string{"serve", "--help"}, "")
	if code != 0 {
		t.Fatalf("serve --help: code %d", code)
	}
	for _, want := range []string{
		"-config FILE", "SIGTERM", "store.redis.addrs", "SMPPGW_STORE_PATH", "deploy/smppgw.example.yaml", "shutdown_timeout",
		"SMPPGW_LOG_LEVEL", "SMPPGW_SMPP_LISTEN", "SMPPGW_SMPP_SESSION_WINDOW", "SMPPGW_CONFIG", "demo account",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("serve --help does not mention %q", want)
		}
	}
	if code, _, errOut := runCLI(nil, ""); code != 2 || !strings.Contains(errOut, "Usage:") {
		t.Errorf("no command: code %d, stderr %q", code, errOut)
	}
	if code, _, errOut := runCLI([]string{"serve", "--config", "/nonexistent/smppgw.yaml"}, ""); code != 2 || !strings.Contains(errOut, "no such file") {
		t.Errorf("missing config: code %d, stderr %q", code, errOut)
	}
}

func TestHashPassword(t *testing.T) {
	code, out, errOut := runCLI([]string{"hash-password"}, "pw123\n")
	if code != 0 {
		t.Fatalf("code %d: %s", code, errOut)
	}
	h := strings.TrimSpace(out)
	if err := bcrypt.CompareHashAndPassword([]byte(h), []byte("pw123")); err != nil {
		t.Errorf("hash %q does not match the password: %v", h, err)
	}
	if code, _, errOut := runCLI([]string{"hash-password"}, "ninechars\n"); code != 2 || !strings.Contains(errOut, "at most 8") {
		t.Errorf("too long: code %d, %q", code, errOut)
	}
	if code, _, _ := runCLI([]string{"hash-password"}, "\n"); code != 2 {
		t.Errorf("empty password: code %d", code)
	}

	a, pw, err := demoAccount()
	if err != nil {
		t.Fatal(err)
	}
	if a.SystemID != "demo" || len(pw) != 8 || bcrypt.CompareHashAndPassword([]byte(a.PasswordHash), []byte(pw)) != nil {
		t.Errorf("demo account %+v with password %q", a, pw)
	}
	if _, pw2, _ := demoAccount(); pw2 == pw {
		t.Error("two demo accounts got the same password")
	}
}
