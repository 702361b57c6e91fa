package deploy

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// instruction is one Dockerfile instruction with its continuation lines joined.
type instruction struct {
	line  int
	cmd   string // upper case
	args  string
	flags []string // --from=..., --chown=..., --interval=...
}

func parseDockerfile(t *testing.T, path string) []instruction {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []instruction
	var cur strings.Builder
	start := 0
	for i, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur.Len() > 0 && strings.HasPrefix(trimmed, "#") {
			continue // a comment inside a continued instruction
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if s, ok := strings.CutSuffix(trimmed, "\\"); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(trimmed)
		cmd, args, _ := strings.Cut(cur.String(), " ")
		in := instruction{line: start, cmd: strings.ToUpper(cmd)}
		args = strings.TrimSpace(args)
		for strings.HasPrefix(args, "--") {
			var flag string
			flag, args, _ = strings.Cut(args, " ")
			in.flags = append(in.flags, flag)
			args = strings.TrimSpace(args)
		}
		in.args = args
		out = append(out, in)
		cur.Reset()
	}
	if cur.Len() > 0 {
		t.Fatalf("%s: ends inside a continued line", path)
	}
	return out
}

// TestDockerfile lints deploy/Dockerfile, since CI cannot build it (no engine, no base images):
// multi-stage, pinned bases, static build with the version stamped, non-root final user, a
// HEALTHCHECK that needs no shell, no ADD from URLs, files it copies exist.
func TestDockerfile(t *testing.T) {
	ins := parseDockerfile(t, "Dockerfile")
	var stages [][]instruction
	for _, in := range ins {
		if in.cmd == "FROM" {
			stages = append(stages, nil)
		}
		if len(stages) == 0 {
			if in.cmd != "ARG" {
				t.Fatalf("line %d: %s before the first FROM", in.line, in.cmd)
			}
			continue
		}
		stages[len(stages)-1] = append(stages[len(stages)-1], in)
	}
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a build stage and a final one", len(stages))
	}
	known := regexp.MustCompile(`^(FROM|RUN|CMD|LABEL|EXPOSE|ENV|ADD|COPY|ENTRYPOINT|VOLUME|USER|WORKDIR|ARG|ONBUILD|STOPSIGNAL|HEALTHCHECK|SHELL)$`)
	var stageNames []string
	for _, in := range ins {
		if !known.MatchString(in.cmd) {
			t.Errorf("line %d: unknown instruction %s", in.line, in.cmd)
		}
		switch in.cmd {
		case "FROM":
			f := strings.Fields(in.args)
			image := f[0]
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				stageNames = append(stageNames, f[2])
			}
			name, tag, hasTag := strings.Cut(image[strings.LastIndex(image, "/")+1:], ":")
			if !strings.Contains(image, "@sha256:") && (!hasTag || tag == "latest" || tag == "") {
				t.Errorf("line %d: base image %s (%s) is not pinned to a tag or digest", in.line, image, name)
			}
		case "ADD":
			if strings.Contains(in.args, "://") {
				t.Errorf("line %d: ADD of a URL; download in a RUN with a checksum instead", in.line)
			}
		case "COPY":
			if slices.ContainsFunc(in.flags, func(f string) bool { return strings.HasPrefix(f, "--from=") }) {
				continue
			}
			f := strings.Fields(in.args)
			for _, src := range f[:len(f)-1] {
				if _, err := os.Stat(filepath.Join("..", src)); err != nil && src != "." {
					t.Errorf("line %d: COPY source %s is not in the repository (the context is its root)", in.line, src)
				}
			}
		}
	}
	for _, in := range ins {
		for _, f := range in.flags {
			if from, ok := strings.CutPrefix(f, "--from="); ok && !slices.Contains(stageNames, from) {
				t.Errorf("line %d: --from=%s names no stage", in.line, from)
			}
		}
	}

	build := joinArgs(stages[0], "RUN")
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-X main.version=${VERSION}", "-X main.revision=${REVISION}", "./cmd/..."} {
		if !strings.Contains(build, want) {
			t.Errorf("the build stage's RUN has no %q", want)
		}
	}

	final := stages[len(stages)-1]
	users := instructions(final, "USER")
	if len(users) == 0 {
		t.Fatal("the final stage sets no USER: it would run as root")
	}
	user, _, _ := strings.Cut(users[len(users)-1].args, ":")
	if user == "root" || user == "0" {
		t.Errorf("the final stage runs as %q", user)
	}
	if len(instructions(final, "RUN")) > 0 {
		t.Error("the final stage RUNs a command: it has no shell (distroless/scratch)")
	}
	hc := instructions(final, "HEALTHCHECK")
	if len(hc) != 1 {
		t.Fatalf("the final stage has %d HEALTHCHECKs, want 1", len(hc))
	}
	if !strings.HasPrefix(hc[0].args, `CMD ["`) || !strings.Contains(hc[0].args, `"healthcheck"`) {
		t.Errorf("HEALTHCHECK %q: want the exec form of smppgw healthcheck (no shell in the image)", hc[0].args)
	}
	ep := joinArgs(final, "ENTRYPOINT")
	if !strings.HasPrefix(ep, `["`) {
		t.Errorf("ENTRYPOINT %q: want the exec form, so SIGTERM reaches smppgw", ep)
	}
	exposed := strings.Fields(joinArgs(final, "EXPOSE"))
	for _, p := range []string{"2775", "3550", "9090", "8080"} {
		if !slices.Contains(exposed, p) {
			t.Errorf("port %s is not EXPOSEd", p)
		}
	}

	// The ignore file keeps the repository's .git and local state out of the context.
	ignore, err := os.ReadFile("Dockerfile.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{".git", "data", "node_modules"} {
		if !strings.Contains(string(ignore), want) {
			t.Errorf("Dockerfile.dockerignore does not leave out %s", want)
		}
	}
}

func instructions(stage []instruction, cmd string) []instruction {
	var out []instruction
	for _, in := range stage {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

func joinArgs(stage []instruction, cmd string) string {
	var s []string
	for _, in := range instructions(stage, cmd) {
		s = append(s, in.args)
	}
	return strings.Join(s, " ")
}

// unit reads a systemd unit file into section -> key -> values (a key may repeat).
func unit(t *testing.T, path string) map[string]map[string][]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string][]string{}
	section := ""
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			out[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not a key=value in a section: %q", path, i+1, line)
			}
			out[section][k] = append(out[section][k], v)
		}
	}
	return out
}

// TestSystemdUnit checks the unit's promises; .ci/run also runs systemd-analyze verify on it.
func TestSystemdUnit(t *testing.T) {
	u := unit(t, "systemd/smppgw.service")
	svc := u["Service"]
	for k, want := range map[string]string{
		"User": "smppgw", "Group": "smppgw", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
		"StateDirectory": "smppgw", "Restart": "on-failure", "PrivateTmp": "yes", "ProtectHome": "yes",
		"CapabilityBoundingSet": "", "KillSignal": "SIGTERM",
	} {
		if got := svc[k]; len(got) == 0 || got[len(got)-1] != want {
			t.Errorf("[Service] %s = %q, want %q", k, got, want)
		}
	}
	if got := svc["ExecStart"]; len(got) != 1 || !strings.Contains(got[0], "smppgw serve --config /etc/smppgw/smppgw.yaml") {
		t.Errorf("ExecStart = %q", got)
	}
	if n, err := strconv.Atoi(svc["LimitNOFILE"][0]); err != nil || n < 20000 {
		t.Errorf("LimitNOFILE = %q: 10k binds need a descriptor each, and more", svc["LimitNOFILE"])
	}
	// The stop timeout outlasts the drain (shutdown_timeout, 30s by default) so it is not cut short.
	stop, err := time.ParseDuration(svc["TimeoutStopSec"][0] + "s")
	if err != nil || stop <= 30*time.Second {
		t.Errorf("TimeoutStopSec = %q: want more than the 30s shutdown_timeout", svc["TimeoutStopSec"])
	}
	if got := u["Install"]["WantedBy"]; len(got) != 1 || got[0] != "multi-user.target" {
		t.Errorf("[Install] WantedBy = %q", got)
	}
	sysusers, err := os.ReadFile("systemd/smppgw.sysusers.conf")
	if err != nil || !regexp.MustCompile(`(?m)^u smppgw `).Match(sysusers) {
		t.Errorf("systemd/smppgw.sysusers.conf does not make the smppgw user: %v", err)
	}
}

// TestCompose checks what docker compose config (run in CI when available) does not: Redis with
// its append-only file, the gateway built from deploy/Dockerfile, a stop grace period longer than
// the drain, and the simulator (cmd/smscsim, from the same image) running by default as the
// gateway's upstream: the gateway's config dials it with the credentials it accepts, and routes to it.
func TestCompose(t *testing.T) {
	b, err := os.ReadFile("compose/compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	type service struct {
		Image      string   `yaml:"image"`
		Entrypoint []string `yaml:"entrypoint"`
		Command    []string `yaml:"command"`
		Build      struct {
			Context    string `yaml:"context"`
			Dockerfile string `yaml:"dockerfile"`
		} `yaml:"build"`
		Environment     map[string]string `yaml:"environment"`
		Volumes         []string          `yaml:"volumes"`
		StopGracePeriod string            `yaml:"stop_grace_period"`
		Profiles        []string          `yaml:"profiles"`
		DependsOn       map[string]struct {
			Condition string `yaml:"condition"`
		} `yaml:"depends_on"`
		Healthcheck struct {
			Test    []string `yaml:"test"`
			Disable bool     `yaml:"disable"`
		} `yaml:"healthcheck"`
		Expose []string `yaml:"expose"`
	}
	var c struct {
		Services map[string]service `yaml:"services"`
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	redis, gw := c.Services["redis"], c.Services["smppgw"]
	if cmd := strings.Join(redis.Command, " "); !strings.Contains(cmd, "--appendonly yes") {
		t.Errorf("redis command %q: AOF is not on", cmd)
	}
	if filepath.Join("compose", gw.Build.Context, gw.Build.Dockerfile) != filepath.Join("..", "deploy", "Dockerfile") {
		t.Errorf("smppgw is built from %s in %s, want deploy/Dockerfile in the repository root", gw.Build.Dockerfile, gw.Build.Context)
	}
	if addrs := gw.Environment["SMPPGW_STORE_REDIS_ADDRS"]; addrs != "redis:6379" {
		t.Errorf("SMPPGW_STORE_REDIS_ADDRS = %q", addrs)
	}
	for _, v := range gw.Volumes {
		src, _, _ := strings.Cut(v, ":")
		if _, err := os.Stat(filepath.Join("compose", src)); strings.HasPrefix(src, ".") && err != nil {
			t.Errorf("volume %s: %v", v, err)
		}
	}
	if d, err := time.ParseDuration(gw.StopGracePeriod); err != nil || d <= 30*time.Second {
		t.Errorf("stop_grace_period %q: want more than the 30s shutdown_timeout", gw.StopGracePeriod)
	}
	for name, svc := range c.Services {
		if len(svc.Profiles) > 0 {
			t.Errorf("service %s is behind profiles %v: every service runs on a plain up", name, svc.Profiles)
		}
		for dep, d := range svc.DependsOn {
			if other, ok := c.Services[dep]; !ok || d.Condition == "service_healthy" && other.Healthcheck.Test == nil {
				t.Errorf("service %s waits for %s to be %s, which does not exist or has no health check", name, dep, d.Condition)
			}
		}
	}

	// The simulator: the command the image builds from cmd/smscsim, its SMPP port what the gateway
	// dials, its credentials the gateway's, its health its own /healthz (the image's is smppgw's).
	sim, ok := c.Services["smscsim"]
	if !ok {
		t.Fatal("no smscsim service: the gateway's upstream")
	}
	if _, err := os.Stat("../cmd/smscsim/main.go"); err != nil || sim.Image != gw.Image || !slices.Equal(sim.Entrypoint, []string{"/usr/local/bin/smscsim"}) {
		t.Errorf("smscsim: image %q entrypoint %q, want smppgw's image (%q) running /usr/local/bin/smscsim (%v)", sim.Image, sim.Entrypoint, gw.Image, err)
	}
	flags := map[string]string{}
	for i := 0; i+1 < len(sim.Command); i += 2 {
		flags[strings.TrimLeft(sim.Command[i], "-")] = sim.Command[i+1]
	}
	_, simPort, _ := net.SplitHostPort(flags["listen"])
	_, httpPort, _ := net.SplitHostPort(flags["http"])
	if !slices.Contains(sim.Expose, simPort) {
		t.Errorf("smscsim listens on %q, exposes %v", flags["listen"], sim.Expose)
	}
	if ht := strings.Join(sim.Healthcheck.Test, " "); sim.Healthcheck.Disable || !strings.Contains(ht, "healthcheck --url http://127.0.0.1:"+httpPort+"/healthz") {
		t.Errorf("smscsim health check %q: want smppgw healthcheck --url on its --http port %s", ht, httpPort)
	}
	if gw.DependsOn["smscsim"].Condition == "" {
		t.Error("smppgw does not depend on smscsim")
	}

	cb, err := os.ReadFile("compose/smppgw.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Upstreams []struct {
			Name     string `yaml:"name"`
			Address  string `yaml:"address"`
			SystemID string `yaml:"system_id"`
			Password string `yaml:"password"`
		} `yaml:"upstreams"`
		Routing struct {
			Routes []struct{ Prefix, Upstream string } `yaml:"routes"`
		} `yaml:"routing"`
		Demo struct{ Disabled bool } `yaml:"demo"`
	}
	if err := yaml.Unmarshal(cb, &cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Upstreams) != 1 {
		t.Fatalf("compose/smppgw.yaml upstreams %+v, want the simulator", cfg.Upstreams)
	}
	up := cfg.Upstreams[0]
	if up.Address != net.JoinHostPort("smscsim", simPort) || up.SystemID != flags["system-id"] || up.Password != flags["password"] {
		t.Errorf("upstream %+v does not bind to the smscsim service (port %s, system_id %q, password %q)", up, simPort, flags["system-id"], flags["password"])
	}
	if len(cfg.Routing.Routes) == 0 || cfg.Routing.Routes[0].Prefix != "" || cfg.Routing.Routes[0].Upstream != up.Name {
		t.Errorf("routes %+v: want every destination routed to %s", cfg.Routing.Routes, up.Name)
	}
	if !cfg.Demo.Disabled {
		t.Error("compose/smppgw.yaml: demo is not disabled, with a real upstream configured")
	}
}
