package store

import "testing"

// TestConfigRecordsFromBeforeDescriptions: account, route and webhook records written before they
// had a description (JSON without the key) still decode, with an empty description.
func TestConfigRecordsFromBeforeDescriptions(t *testing.T) {
	a, err := decodeConfig[Account](KindAccount, []byte(`{"system_id":"acme","password_hash":null,"bind_types":0,"allow_ips":null,"max_binds":2,"throughput":0,"default_route":"","disabled":false,"created_at":"2024-01-02T03:04:05Z","updated_at":"2024-01-02T03:04:05Z"}`))
	if err != nil || a.SystemID != "acme" || a.MaxBinds != 2 || a.Description != "" {
		t.Errorf("old account: %+v %v", a, err)
	}
	r, err := decodeConfig[Route](KindRoute, []byte(`{"name":"uk","account":"","prefix":"44","upstreams":["s1"],"priority":1,"created_at":"2024-01-02T03:04:05Z","updated_at":"2024-01-02T03:04:05Z"}`))
	if err != nil || r.Prefix != "44" || r.Description != "" {
		t.Errorf("old route: %+v %v", r, err)
	}
	w, err := decodeConfig[Webhook](KindWebhook, []byte(`{"id":"w1","account":"acme","url":"https://x.test/","secret":"s","events":["mo"],"disabled":false,"created_at":"2024-01-02T03:04:05Z"}`))
	if err != nil || w.URL != "https://x.test/" || w.Description != "" {
		t.Errorf("old webhook: %+v %v", w, err)
	}
}
