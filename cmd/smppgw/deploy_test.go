package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// TestDeployConfigsLoad: the configurations deploy/ ships (the container image's default, the
// compose file's, the Helm chart's values) load as serve would load them, and health checks reach
// their API on loopback.
func TestDeployConfigsLoad(t *testing.T) {
	cfg, err := loadConfig("../../deploy/docker/smppgw.yaml", nil)
	if err != nil {
		t.Fatalf("deploy/docker/smppgw.yaml: %v", err)
	}
	if cfg.SMPP.Listen != "0.0.0.0:2775" || cfg.Log.Format != "json" || cfg.Store.Path != "/var/lib/smppgw/smppgw.db" {
		t.Errorf("container config = %+v %+v %+v", cfg.SMPP.Listen, cfg.Log, cfg.Store)
	}
	if u, err := healthURL(cfg, false); err != nil || u != "http://127.0.0.1:8080/healthz" {
		t.Errorf("container healthcheck URL %q, %v", u, err)
	}

	cfg, err = loadConfig("../../deploy/compose/smppgw.yaml", []string{"SMPPGW_STORE_REDIS_ADDRS=redis:6379"})
	if err != nil {
		t.Fatalf("deploy/compose/smppgw.yaml: %v", err)
	}
	if len(cfg.Store.Redis.Addrs) != 1 || len(cfg.Upstreams) != 1 || cfg.Upstreams[0].Address != "smscsim:2776" {
		t.Errorf("compose config: store %+v, upstreams %+v", cfg.Store.Redis, cfg.Upstreams)
	}
	if rs := cfg.Routing.Routes; len(rs) != 1 || rs[0].Upstream != cfg.Upstreams[0].Name || !cfg.Demo.Disabled {
		t.Errorf("compose config: routes %+v, demo %+v; want every destination to the simulator and the demo off", rs, cfg.Demo)
	}

	// The chart renders values.config with toYaml into the ConfigMap; load the same document.
	b, err := os.ReadFile("../../deploy/helm/smppgw/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var values struct {
		Config                        yaml.Node `yaml:"config"`
		TerminationGracePeriodSeconds int       `yaml:"terminationGracePeriodSeconds"`
	}
	if err := yaml.Unmarshal(b, &values); err != nil {
		t.Fatal(err)
	}
	doc, err := yaml.Marshal(&values.Config)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err = loadConfig(writeConfig(t, string(doc)), nil)
	if err != nil {
		t.Fatalf("deploy/helm/smppgw/values.yaml config: %v", err)
	}
	if time.Duration(values.TerminationGracePeriodSeconds)*time.Second <= cfg.ShutdownTimeout {
		t.Errorf("terminationGracePeriodSeconds %d does not outlast shutdown_timeout %v", values.TerminationGracePeriodSeconds, cfg.ShutdownTimeout)
	}
	for _, l := range []string{cfg.SMPP.Listen, cfg.API.GRPCListen, cfg.API.HTTPListen} {
		if !strings.HasPrefix(l, "0.0.0.0:") {
			t.Errorf("helm config listens on %q: a pod must listen on every address", l)
		}
	}
}
