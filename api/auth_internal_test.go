package api

import (
	"encoding/base64"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// TestCheckBasicRemembersVerifiedCredentials: a matching operator password is remembered (as an
// HMAC), so later requests skip bcrypt; a wrong password, an unknown name or another password of the
// same operator is never accepted from the memory.
func TestCheckBasicRemembersVerifiedCredentials(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("opspw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	a := &authenticator{admins: map[string][]byte{"ops": hash}}
	basic := func(user, pass string) string { return base64.StdEncoding.EncodeToString([]byte(user + ":" + pass)) }
	if _, ok := a.checkBasic(basic("ops", "wrong")); ok {
		t.Fatal("wrong password accepted")
	}
	if _, ok := a.verified.Load("ops"); ok {
		t.Fatal("a failed check was remembered")
	}
	if name, ok := a.checkBasic(basic("ops", "opspw")); !ok || name != "ops" {
		t.Fatalf("checkBasic = %q, %v", name, ok)
	}
	if _, ok := a.verified.Load("ops"); !ok {
		t.Fatal("a verified credential was not remembered")
	}
	// From memory now: the same answer without the hash (bcrypt would refuse an empty hash).
	a.admins["ops"] = []byte{}
	if name, ok := a.checkBasic(basic("ops", "opspw")); !ok || name != "ops" {
		t.Fatalf("remembered credential: %q, %v", name, ok)
	}
	for _, c := range [][2]string{{"ops", "other"}, {"nobody", "opspw"}} {
		if _, ok := a.checkBasic(basic(c[0], c[1])); ok {
			t.Errorf("%s:%s accepted", c[0], c[1])
		}
	}
}
