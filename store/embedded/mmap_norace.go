//go:build !race

package embedded

// initialMmap is bbolt's first map size: growing the map makes a commit copy every node it
// touched (dereference), and the map is address space, not memory, so it starts big.
const initialMmap = 1 << 30
