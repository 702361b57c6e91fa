package main

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/smppgw/smppgw/api"
)

const healthcheckUsage = `Usage: smppgw healthcheck [--config FILE] [--ready] [--url URL] [--timeout D]

GETs /healthz (with --ready: /readyz) on the API's http_listen from the same configuration serve
reads (--config, else $SMPPGW_CONFIG, plus the SMPPGW_* overrides), on loopback when it listens on
all addresses, over HTTPS when api.tls is set (the certificate is not verified: it is this host).
Exits 0 on 200, 1 otherwise. For container HEALTHCHECKs and probes in images without a shell.

Flags:
`

// healthcheckCommand is `smppgw healthcheck`.
func healthcheckCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("healthcheck", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	configPath := fs.String("config", "", "YAML configuration `FILE` (default: $SMPPGW_CONFIG, else built-in defaults)")
	ready := fs.Bool("ready", false, "check /readyz (store and gateway ready) instead of /healthz (process up)")
	rawURL := fs.String("url", "", "GET this `URL` instead of the one the configuration gives")
	timeout := fs.Duration("timeout", 5*time.Second, "bound on the whole request")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, healthcheckUsage)
			fs.SetOutput(stdout)
			fs.PrintDefaults()
			return 0
		}
		return usageError(stderr, "healthcheck", err.Error())
	}
	if fs.NArg() > 0 {
		return usageError(stderr, "healthcheck", fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	u := *rawURL
	insecure := false
	if u == "" {
		path := *configPath
		if path == "" {
			path = os.Getenv(envPrefix + "CONFIG")
		}
		cfg, err := loadConfig(path, os.Environ())
		if err != nil {
			fmt.Fprintf(stderr, "smppgw healthcheck: %v\n", err)
			return 1
		}
		if u, err = healthURL(cfg, *ready); err != nil {
			fmt.Fprintf(stderr, "smppgw healthcheck: %v\n", err)
			return 1
		}
		insecure = cfg.API.TLS != nil
	}
	client := &http.Client{Timeout: *timeout, Transport: &http.Transport{
		// Our own API on this host: its certificate names the service, not loopback.
		TLSClientConfig: &tls.Config{InsecureSkipVerify: insecure},
		Proxy:           nil, // never through a proxy from the environment
	}}
	resp, err := client.Get(u)
	if err != nil {
		fmt.Fprintf(stderr, "smppgw healthcheck: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "smppgw healthcheck: GET %s: %s\n", u, resp.Status)
		return 1
	}
	return 0
}

// healthURL is where the API of cfg answers health checks from this host.
func healthURL(cfg Config, ready bool) (string, error) {
	if cfg.API.Disabled {
		return "", errors.New("the API is disabled (api.disabled), so there is no /healthz to check")
	}
	addr := cfg.API.HTTPListen
	if addr == "" {
		addr = api.DefaultHTTPListen
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("api.http_listen %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		// Go listens dual-stack on "::" too, so IPv4 loopback reaches either wildcard.
		host = "127.0.0.1"
	}
	scheme := "http"
	if cfg.API.TLS != nil {
		scheme = "https"
	}
	path := "/healthz"
	if ready {
		path = "/readyz"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + path, nil
}
