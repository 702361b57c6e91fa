package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// readmePath is the README whose quick start TestQuickStart follows.
const readmePath = "../../README.md"

// TestQuickStart runs README's quick start as written: the run command with no configuration in an
// empty directory, then, with the password, key and message id it printed substituted for README's
// placeholders, the smppload command (ten messages acknowledged, ten receipts), the REST submit
// (a message id), the receipt stream and the message's GET (its receipt). Only the addresses differ:
// the gateway listens on free ports (SMPPGW_*_LISTEN=127.0.0.1:0), which replace README's defaults.
func TestQuickStart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binaries (-short)")
	}
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Fatal("curl is not on PATH: README's quick start uses it (apt-get install -y curl; .ci/run does this), or run with -short to skip")
	}
	qs := readQuickStart(t, readmePath)
	serveCmd := qs.command(t, "go run ./cmd/smppgw serve")
	loadCmd := qs.command(t, "go run ./cmd/smppload ")
	submitCmd := qs.command(t, "curl -s ", " -d ")
	getCmd := qs.command(t, "curl -s ", "/v1/messages/MESSAGE_ID")
	streamCmd := qs.command(t, "curl -sN ", "/v1/messages:streamReceipts")
	qs.command(t, "go test -race -count=1 ./...") // the set-up commands stay as the brief has them
	if serveCmd != "go run ./cmd/smppgw serve" {
		t.Errorf("README's run command is %q", serveCmd)
	}
	for _, c := range []string{submitCmd, getCmd, streamCmd} {
		if !strings.Contains(c, "Bearer API_KEY") {
			t.Errorf("README's %q does not use the API_KEY placeholder", c)
		}
	}
	if !strings.Contains(loadCmd, "--password PASSWORD") {
		t.Errorf("README's %q does not use the PASSWORD placeholder", loadCmd)
	}

	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+string(filepath.Separator), "./cmd/smppgw", "./cmd/smppload")
	build.Dir = "../.."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	// The run command, as a new user runs it: no config, an empty directory, no SMPPGW_ settings but
	// the free ports.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	serve := exec.CommandContext(ctx, filepath.Join(bin, "smppgw"), words(t, serveCmd)[3:]...)
	serve.Dir = t.TempDir()
	serve.Env = append(cleanEnv(),
		"SMPPGW_SMPP_LISTEN=127.0.0.1:0", "SMPPGW_API_GRPC_LISTEN=127.0.0.1:0", "SMPPGW_API_HTTP_LISTEN=127.0.0.1:0",
		"SMPPGW_DEMO_LISTEN=127.0.0.1:0")
	log := newLineTail(t)
	serve.Stderr = log.w
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- serve.Wait() }()
	defer func() {
		if serve.ProcessState == nil {
			serve.Process.Kill()
		}
	}()
	field := func(line, re string) string {
		m := regexp.MustCompile(re).FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("no %s in the log line %q", re, line)
		}
		return m[1]
	}
	password := field(log.until(t, "made a demo account"), ` password=(\S+)`)
	key := field(log.until(t, "made an API key"), ` api_key=(\S+)`)
	smppAddr := field(log.until(t, "smppgw serving"), ` listen=\["([^"]+)"\]`)
	httpAddr := field(log.until(t, "api listening"), ` http=(\S+)`)
	for _, l := range qs.logLines {
		if !log.has(l) {
			t.Errorf("README shows the log line %q; the gateway printed no line with that message", l)
		}
	}
	subst := strings.NewReplacer("PASSWORD", password, "API_KEY", key, "127.0.0.1:2775", smppAddr, "127.0.0.1:8080", httpAddr)

	// smppload: every message acknowledged, every receipt back.
	lw := words(t, subst.Replace(loadCmd))
	load := exec.CommandContext(ctx, filepath.Join(bin, "smppload"), lw[3:]...)
	out, err := load.Output()
	if err != nil {
		t.Fatalf("smppload: %v\n%s", err, out)
	}
	n := lw[slices.Index(lw, "--messages")+1]
	for _, row := range []string{`acknowledged \(ESME_ROK\)`, `receipts`, `  receipt DELIVERED`} {
		got := "missing"
		if m := regexp.MustCompile(`(?m)^` + row + `\s+(\d+)\s*$`).FindSubmatch(out); m != nil {
			got = string(m[1])
		}
		if got != n {
			t.Errorf("smppload's table: %s is %s, want %s\n%s", row, got, n, out)
		}
	}

	// The receipt stream, started before the REST submit as README says.
	stream := exec.CommandContext(ctx, curl, words(t, subst.Replace(streamCmd))[1:]...)
	streamOut, err := stream.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stream.Process.Kill(); stream.Wait() }()
	receipts := make(chan map[string]any, 100)
	go func() {
		sc := bufio.NewScanner(streamOut)
		for sc.Scan() {
			var line struct {
				Result struct{ Receipt map[string]any }
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Result.Receipt != nil {
				receipts <- line.Result.Receipt
			}
		}
	}()

	// The REST submit answers with the message's id.
	out, err = exec.CommandContext(ctx, curl, words(t, subst.Replace(submitCmd))[1:]...).Output()
	var submitted struct{ MessageID string }
	if err != nil || json.Unmarshal(out, &submitted) != nil || submitted.MessageID == "" {
		t.Fatalf("REST submit: %v, answer %s", err, out)
	}

	// Its receipt arrives on the stream, and the message shows it.
	select {
	case r := <-receipts:
		if r["messageId"] != submitted.MessageID || r["status"] != "MESSAGE_STATUS_DELIVERED" || r["upstream"] != demoUpstream {
			t.Errorf("streamed receipt %v, want DELIVERED for %s from %s", r, submitted.MessageID, demoUpstream)
		}
	case <-time.After(wait):
		t.Error("no receipt on the stream")
	}
	getArgs := words(t, strings.ReplaceAll(subst.Replace(getCmd), "MESSAGE_ID", submitted.MessageID))[1:]
	for deadline := time.Now().Add(wait); ; time.Sleep(100 * time.Millisecond) {
		out, err = exec.CommandContext(ctx, curl, getArgs...).Output()
		var got struct {
			Message struct {
				Status   string
				Receipts []struct{ Status, Text string }
			}
		}
		if err == nil && json.Unmarshal(out, &got) == nil && got.Message.Status == "MESSAGE_STATUS_DELIVERED" {
			if len(got.Message.Receipts) != 1 || !strings.Contains(got.Message.Receipts[0].Text, "stat:DELIVRD") {
				t.Errorf("delivered message with receipts %+v", got.Message.Receipts)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET message: %v, %s; want MESSAGE_STATUS_DELIVERED", err, out)
		}
	}

	// SIGTERM: a clean stop.
	if err := serve.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("smppgw exited with %v after SIGTERM, want 0", err)
		}
	case <-time.After(wait):
		t.Fatal("smppgw did not exit after SIGTERM")
	}
	log.until(t, "smppgw stopped")
}

// quickStart is what README's quick start shows: its shell commands (continuation lines joined) and
// the log lines of its text blocks, without their time stamps.
type quickStart struct {
	commands []string
	logLines []string
}

// readQuickStart reads the fenced blocks of README's "## Quick start" section.
func readQuickStart(t *testing.T, path string) quickStart {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Quick start\n")
	if !ok {
		t.Fatal("README has no ## Quick start")
	}
	if i := strings.Index(section, "\n## "); i >= 0 {
		section = section[:i]
	}
	var qs quickStart
	for rest := section; ; {
		_, after, ok := strings.Cut(rest, "\n```")
		if !ok {
			break
		}
		lang, after, _ := strings.Cut(after, "\n")
		body, after, ok := strings.Cut(after, "```")
		if !ok {
			t.Fatal("README's quick start has an unclosed code block")
		}
		rest = after
		switch lang {
		case "sh":
			qs.commands = append(qs.commands, strings.TrimSpace(strings.ReplaceAll(body, "\\\n", "")))
		case "text":
			for l := range strings.Lines(body) {
				if f := strings.Fields(l); len(f) > 2 {
					qs.logLines = append(qs.logLines, strings.Join(f[1:], " ")) // without the time
				}
			}
		}
	}
	return qs
}

// command returns the one command that starts with prefix and contains every one of parts.
func (qs quickStart) command(t *testing.T, prefix string, parts ...string) string {
	t.Helper()
	var found []string
	for _, c := range qs.commands {
		if strings.HasPrefix(c, prefix) && !slices.ContainsFunc(parts, func(p string) bool { return !strings.Contains(c, p) }) {
			found = append(found, c)
		}
	}
	if len(found) != 1 {
		t.Fatalf("README's quick start has %d commands starting %q with %q (%q), want 1", len(found), prefix, parts, found)
	}
	return found[0]
}

// words splits a command line as a POSIX shell would, for the subset README uses: blanks, single
// quotes, double quotes with backslash escapes. Anything else a shell would interpret fails the test.
func words(t *testing.T, line string) []string {
	t.Helper()
	var out []string
	var w strings.Builder
	inWord := false
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				out, inWord = append(out, w.String()), false
				w.Reset()
			}
			continue
		case c == '\'':
			j := strings.IndexByte(line[i+1:], '\'')
			if j < 0 {
				t.Fatalf("unclosed ' in %q", line)
			}
			w.WriteString(line[i+1 : i+1+j])
			i += j + 1
		case c == '"':
			for i++; i < len(line) && line[i] != '"'; i++ {
				if line[i] == '$' || line[i] == '`' {
					t.Fatalf("README's command %q expands something in double quotes", line)
				}
				if line[i] == '\\' && i+1 < len(line) && strings.IndexByte("\"\\$`", line[i+1]) >= 0 {
					i++
				}
				w.WriteByte(line[i])
			}
			if i == len(line) {
				t.Fatalf("unclosed \" in %q", line)
			}
		case strings.IndexByte("|&;<>()$`\\*?[#~", c) >= 0:
			t.Fatalf("README's command %q uses %q, which this test does not interpret", line, c)
		default:
			w.WriteByte(c)
		}
		inWord = true
	}
	if inWord {
		out = append(out, w.String())
	}
	return out
}

// cleanEnv is the test's environment without the gateway's settings, as a new user's shell has it.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, envPrefix) && !strings.HasPrefix(kv, "XDG_STATE_HOME=") {
			env = append(env, kv)
		}
	}
	return env
}

// lineTail collects a process's log lines as written (console format).
type lineTail struct {
	w     *io.PipeWriter
	mu    sync.Mutex
	lines []string
	more  chan struct{}
}

func newLineTail(t *testing.T) *lineTail {
	r, w := io.Pipe()
	lt := &lineTail{w: w, more: make(chan struct{}, 1)}
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			lt.mu.Lock()
			lt.lines = append(lt.lines, sc.Text())
			lt.mu.Unlock()
			select {
			case lt.more <- struct{}{}:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		w.Close()
		if t.Failed() {
			lt.mu.Lock()
			t.Logf("smppgw's log:\n%s", strings.Join(lt.lines, "\n"))
			lt.mu.Unlock()
		}
	})
	return lt
}

// until returns the first line containing s, waiting for it.
func (lt *lineTail) until(t *testing.T, s string) string {
	t.Helper()
	timeout := time.After(wait)
	for {
		lt.mu.Lock()
		i := slices.IndexFunc(lt.lines, func(l string) bool { return strings.Contains(l, s) })
		var l string
		if i >= 0 {
			l = lt.lines[i]
		}
		lt.mu.Unlock()
		if i >= 0 {
			return l
		}
		select {
		case <-lt.more:
		case <-timeout:
			t.Fatalf("no log line with %q", s)
		}
	}
}

// has reports whether a line printed so far reads as readme does (a level, a message, fields) with
// the same level, message and field names; the values are this run's.
func (lt *lineTail) has(readme string) bool {
	shape := func(l string) string {
		f := strings.Fields(l)
		for i, w := range f {
			if k, _, ok := strings.Cut(w, "="); ok && regexp.MustCompile(`^[a-z_]+$`).MatchString(k) {
				f[i] = k + "="
			}
		}
		return strings.Join(f, " ")
	}
	want := shape(readme)
	lt.mu.Lock()
	defer lt.mu.Unlock()
	for _, l := range lt.lines {
		if _, rest, ok := strings.Cut(l, " "); ok && shape(rest) == want {
			return true
		}
	}
	return false
}
