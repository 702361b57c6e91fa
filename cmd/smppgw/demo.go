package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/rs/zerolog"

	"github.com/smppgw/smppgw/api"
	"github.com/smppgw/smppgw/gateway"
	"github.com/smppgw/smppgw/internal/smscsim"
	"github.com/smppgw/smppgw/store"
)

// The demo's names: the account a configuration without accounts gets, the upstream the built-in
// simulator is to the gateway, and the name that marks the demo's API key in the store.
const (
	demoSystemID = "demo"
	demoUpstream = "demo-smsc"
	demoKeyName  = "demo (smppgw serve; revoked at its next start)"
)

// randomPassword returns 8 characters (the most a bind carries) from an alphabet without look-alikes.
func randomPassword() (string, error) {
	const alphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b), nil
}

// demoAccount makes the account a configuration without accounts gets: system_id "demo" and a random
// 8-character password, returned in clear for the start-up log.
func demoAccount() (gateway.Account, string, error) {
	pw, err := randomPassword()
	if err != nil {
		return gateway.Account{}, "", err
	}
	h, err := hashPassword(pw)
	if err != nil {
		return gateway.Account{}, "", err
	}
	return gateway.Account{SystemID: demoSystemID, PasswordHash: h}, pw, nil
}

// startDemoSMSC starts the built-in SMSC simulator on c.Listen and returns it with the upstream and
// the route that carry the demo account's messages to it. The simulator accepts only the gateway's
// bind (a random password, never printed) and sends a receipt c.ReceiptDelay after each answer.
func startDemoSMSC(c DemoConfig, log zerolog.Logger) (*smscsim.Sim, gateway.ClientConfig, gateway.Route, error) {
	pw, err := randomPassword()
	if err != nil {
		return nil, gateway.ClientConfig{}, gateway.Route{}, err
	}
	simLog := log.With().Str("component", demoUpstream).Logger()
	if log.GetLevel() > zerolog.DebugLevel {
		simLog = simLog.Level(zerolog.WarnLevel) // its binds and closes repeat the gateway's own lines
	}
	sim, err := smscsim.Start(c.Listen, smscsim.Options{
		Accounts: map[string]string{"smppgw": pw}, SystemID: demoUpstream, IDPrefix: "DEMO",
		ReceiptDelay: c.ReceiptDelay, Logger: simLog,
		NoRecord: true, // the demo runs for as long as the gateway does: keep counts, not every submission
	})
	if err != nil {
		return nil, gateway.ClientConfig{}, gateway.Route{}, fmt.Errorf("demo: %w (set demo.listen, SMPPGW_DEMO_LISTEN, or turn the demo off with SMPPGW_DEMO_DISABLED=true)", err)
	}
	up := gateway.ClientConfig{Name: demoUpstream, Address: sim.Addr(), SystemID: "smppgw", Password: pw}
	route := gateway.Route{Prefix: "", Accounts: []string{demoSystemID}, Upstream: demoUpstream}
	return sim, up, route, nil
}

// demoKey revokes the demo keys of earlier runs and makes a new one for the demo account, with the
// send, read and admin scopes, returning its secret. A fresh key each run, like the demo password:
// the secret of an earlier one is not kept anywhere, so it could not be printed again.
func demoKey(ctx context.Context, st store.APIKeys) (string, error) {
	if _, err := revokeDemoKeys(ctx, st); err != nil {
		return "", err
	}
	k, secret, err := api.NewAPIKey(demoKeyName, demoSystemID, store.ScopeSend, store.ScopeRead, store.ScopeAdmin)
	if err != nil {
		return "", fmt.Errorf("demo key: %w", err)
	}
	if err := st.CreateAPIKey(ctx, k); err != nil {
		return "", fmt.Errorf("demo key: %w", err)
	}
	return secret, nil
}

// revokeDemoKeys deletes the keys demoKey made, returning how many: a run without the demo leaves no
// admin key behind whose secret an earlier run's log holds.
func revokeDemoKeys(ctx context.Context, st store.APIKeys) (int, error) {
	keys, err := st.ListAPIKeys(ctx)
	if err != nil {
		return 0, fmt.Errorf("demo key: %w", err)
	}
	n := 0
	for _, k := range keys {
		if k.Name == demoKeyName && k.Account == demoSystemID {
			if err := st.DeleteAPIKey(ctx, k.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
				return n, fmt.Errorf("demo key: revoke %s: %w", k.ID, err)
			}
			n++
		}
	}
	return n, nil
}
