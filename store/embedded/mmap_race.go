//go:build race

package embedded

// initialMmap is 0 under the race detector, which backs a map with shadow memory at Open: a
// 1 GiB map made every Open of the tests slow enough to expire 50 ms TTLs.
const initialMmap = 0
