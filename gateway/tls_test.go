package gateway

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/smppgw/smppgw/gateway/session"
	"github.com/smppgw/smppgw/gateway/session/sessiontest"
)

// testCert writes a self-signed certificate for 127.0.0.1 and localhost and returns its files.
func testCert(t testing.TB) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "smppgw test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// startTLSServer starts a server for the account alice (password secret) on cfg's one listener, which
// Start must have opened by the time it returns, and returns that listener's address.
func startTLSServer(t *testing.T, cfg ServerConfig) string {
	t.Helper()
	auth, err := NewMemoryAuthenticator(testAccount(t, "alice", "secret"))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewServer(cfg, auth, &acceptSink{}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	if n := len(srv.Addrs()); n != 1 {
		t.Fatalf("%d listeners once Start returned, want 1", n)
	}
	return srv.Addrs()[0].String()
}

func TestTLSBind(t *testing.T) {
	cert, key := testCert(t)
	addr := startTLSServer(t, ServerConfig{Listeners: []ListenerConfig{{Address: "127.0.0.1:0", TLS: &ServerTLSConfig{CertFile: cert, KeyFile: key, ClientCAFile: cert}}}})

	c, err := NewClient(ClientConfig{Address: addr, SystemID: "alice", Password: "secret", TLS: &ClientTLSConfig{CAFile: cert, CertFile: cert, KeyFile: key}, ReconnectMin: 10 * time.Millisecond}, nil, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Unbind(context.Background()) })
	if err := c.awaitBound(sessiontest.Ctx(t)); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	if err := c.Submit(sessiontest.Ctx(t), submit("1"), func(_ session.Response, err error) { done <- err }); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// A client that does not trust the certificate never binds.
	bad, err := NewClient(ClientConfig{Address: addr, SystemID: "alice", Password: "secret", TLS: &ClientTLSConfig{ServerName: "localhost"}, ReconnectMin: 10 * time.Millisecond, ReconnectMax: 20 * time.Millisecond}, nil, nil, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	bad.Start()
	t.Cleanup(func() { bad.Unbind(context.Background()) })
	sessiontest.Eventually(t, "a failed TLS bind", func() bool { return bad.Status().BindErrors > 0 })
	if st := bad.Status(); st.Binds != 0 || !strings.Contains(st.LastError, "certificate") {
		t.Fatalf("untrusted server: %+v", st)
	}
}

func TestTLSRequiresClientCertificate(t *testing.T) {
	cert, key := testCert(t)
	addr := startTLSServer(t, ServerConfig{FailureDelay: -1, Listeners: []ListenerConfig{{Address: "127.0.0.1:0", TLS: &ServerTLSConfig{CertFile: cert, KeyFile: key, ClientCAFile: cert, RequireClientCert: true}}}})
	for _, withCert := range []bool{false, true} {
		tc := &ClientTLSConfig{CAFile: cert, ServerName: "localhost"}
		if withCert {
			tc.CertFile, tc.KeyFile = cert, key
		}
		conn, err := dial(sessiontest.Ctx(t), addr, tc, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		s := session.New(conn, session.Options{Role: session.RoleESME, Logger: zerolog.Nop()})
		_, err = s.Bind(sessiontest.Ctx(t), session.BindTransmitter, session.BindParams{SystemID: "alice", Password: "secret"})
		if withCert != (err == nil) {
			t.Fatalf("client certificate %v: bind %v", withCert, err)
		}
		s.Close()
		<-s.Done()
	}
	if _, err := (&ServerTLSConfig{CertFile: cert, KeyFile: key, RequireClientCert: true}).build(); err == nil {
		t.Fatal("require_client_cert without a CA accepted")
	}
}
