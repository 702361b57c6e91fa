// Package redistest starts redis-server for tests: one of the test's own on a free loopback port, with
// a data directory of its own and AOF on, stopped when the test ends. Tests never talk to a server
// they did not start. It serves the tests of store/redis, gateway and api, and nothing else: it
// knows redis-server's command line, not the store. StartClusterN starts a real Redis Cluster of
// several such servers joined with redis-cli --cluster create.
//
// Without redis-server on PATH, Start fails the test, or skips it under -short.
package redistest
