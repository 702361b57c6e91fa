package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
)

// ServerTLSConfig is the TLS side of a listener.
type ServerTLSConfig struct {
	CertFile string `yaml:"cert_file"` // PEM certificate chain; required
	KeyFile  string `yaml:"key_file"`  // PEM private key; required
	// ClientCAFile, when set, asks clients for a certificate signed by one of these CAs.
	ClientCAFile string `yaml:"client_ca_file"`
	// RequireClientCert refuses clients without a valid certificate (needs ClientCAFile).
	RequireClientCert bool `yaml:"require_client_cert"`
}

func (c *ServerTLSConfig) build() (*tls.Config, error) {
	if c.CertFile == "" || c.KeyFile == "" {
		return nil, errors.New("tls: cert_file and key_file are required")
	}
	cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("tls.cert_file, tls.key_file: %w", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if c.ClientCAFile != "" {
		pool, err := loadPool(c.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.client_ca_file: %w", err)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.VerifyClientCertIfGiven
		if c.RequireClientCert {
			tc.ClientAuth = tls.RequireAndVerifyClientCert
		}
	} else if c.RequireClientCert {
		return nil, errors.New("tls.require_client_cert: needs tls.client_ca_file")
	}
	return tc, nil
}

// ClientTLSConfig is the TLS side of an upstream bind or an outbind.
type ClientTLSConfig struct {
	// CAFile holds the PEM CAs that sign the server's certificate; empty means the system roots.
	CAFile string `yaml:"ca_file"`
	// ServerName is sent as SNI and checked against the certificate; empty means the host of Address.
	ServerName string `yaml:"server_name"`
	// InsecureSkipVerify accepts any certificate. For tests against self-signed peers only.
	InsecureSkipVerify bool `yaml:"insecure_skip_verify"`
	// CertFile and KeyFile, when set, present a client certificate.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

func (c *ClientTLSConfig) build(address string) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: c.ServerName, InsecureSkipVerify: c.InsecureSkipVerify}
	if tc.ServerName == "" {
		host := address
		if i := strings.LastIndexByte(address, ':'); i >= 0 {
			host = strings.Trim(address[:i], "[]")
		}
		tc.ServerName = host
	}
	if c.CAFile != "" {
		pool, err := loadPool(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("tls.ca_file: %w", err)
		}
		tc.RootCAs = pool
	}
	if c.CertFile != "" || c.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("tls.cert_file, tls.key_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

func loadPool(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("no PEM certificate in %s", file)
	}
	return pool, nil
}
