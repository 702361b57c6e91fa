// Package sessiontest holds the test doubles of package session's users: a Recorder handler, ESME
// sessions dialled and bound to a server under test, and the bounded waits they share. The tests of
// package session (its external test package) and of package gateway use it.
//
// It imports session and nothing of gateway, so that both can import it; it is for tests only.
package sessiontest
