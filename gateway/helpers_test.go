package gateway

import (
	"context"
	"net"
	"testing"

	"github.com/rs/zerolog"
	"golang.org/x/crypto/bcrypt"

	"github.com/smppgw/smppgw/gateway/session/sessiontest"
	"github.com/smppgw/smppgw/pdu"
)

func testAccount(t testing.TB, systemID, password string) Account {
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return Account{SystemID: systemID, PasswordHash: string(h)}
}

// startServer serves on a fresh 127.0.0.1 port and shuts down at the end of the test.
func startServer(t testing.TB, cfg ServerConfig, sink MessageHandler, accounts ...Account) (*Server, string) {
	t.Helper()
	auth, err := NewMemoryAuthenticator(accounts...)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.FailureDelay == 0 {
		cfg.FailureDelay = -1
	}
	srv, err := NewServer(cfg, auth, sink, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), sessiontest.Wait)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return srv, l.Addr().String()
}

func submit(to string) *pdu.SubmitSM {
	return &pdu.SubmitSM{SourceAddr: "12345", DestinationAddr: to, ShortMessage: []byte("hello")}
}

// passwordChecks is how many bcrypt comparisons srv has run for binds.
func passwordChecks(srv *Server) uint64 { return srv.bindGate.checks.Load() }
