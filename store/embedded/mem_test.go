package embedded

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestRunsMatchModel merges write sets into a memtable, as the syncer does, and checks its
// runs answer every key, in order, as a single ordered map with the same rules would: a
// newer entry hides an older one, a key put fresh stays fresh when put again, and a tombstone
// over a fresh key removes it.
func TestRunsMatchModel(t *testing.T) {
	for _, pattern := range []string{"rising", "scattered", "mixed"} {
		t.Run(pattern, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(len(pattern))))
			ws, m := newWriteSet(), newMemtable()
			model := map[string]kv{}
			used := map[string]bool{}  // keys ever put: a fresh put needs a key never seen
			fresh := map[string]bool{} // keys ever put fresh
			next := 0
			for batch := range 400 {
				wb := ws.bucket("q", bQueues, nil, true)
				for range 1 + rng.IntN(40) {
					var k string
					switch {
					case pattern == "rising" || pattern == "mixed" && rng.IntN(2) == 0:
						next++
						k = fmt.Sprintf("k%06d", next)
					default:
						k = fmt.Sprintf("k%06d", rng.IntN(next+50))
					}
					var e kv
					switch r := rng.IntN(10); {
					case r < 3:
						e = kv{k: []byte(k), del: true}
					case r < 7 && !used[k]:
						e = kv{k: []byte(k), v: []byte(fmt.Sprint(batch)), fresh: true}
					default:
						e = kv{k: []byte(k), v: []byte(fmt.Sprint(batch))}
					}
					if !e.del {
						used[k] = true
					}
					if e.fresh {
						fresh[k] = true
					}
					wb.set(e)
				}
				// The model takes the batch as the write set holds it, each key once, as a
				// tree did when a batch was merged into it key by key.
				for _, e := range wb.w {
					k := string(e.k)
					if old, ok := model[k]; ok {
						if e, ok = over(old, e); !ok {
							delete(model, k)
							continue
						}
					}
					model[k] = e
				}
				m.merge(ws, uint64(batch+1), time.Now())
				ws.reset()
				if batch%10 != 9 {
					continue
				}
				checkModel(t, m.b["q"], model, fresh)
				if t.Failed() {
					t.Fatalf("after batch %d", batch)
				}
			}
			if runs := len(m.b["q"].runs); runs > 12 {
				t.Errorf("%d runs after 400 batches", runs)
			}
		})
	}
}

func checkModel(t *testing.T, mb *mbucket, model map[string]kv, fresh map[string]bool) {
	t.Helper()
	keys := make([]string, 0, len(model))
	for k := range model {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	// A tombstone over a key put fresh in this memtable may be there or not: the runs drop
	// one that meets the fresh put in an older run, where a tree that saw the key removed
	// first kept it. Either way nothing below the memtable has the key. Likewise a key put
	// again after such a removal may be marked fresh or not.
	optional := func(e kv) bool { return e.del && fresh[string(e.k)] }
	show := func(e kv) string {
		return fmt.Sprintf("%s %q %v %v", e.k, e.v, e.del, e.fresh || fresh[string(e.k)])
	}
	var got []string
	mb.scan(func(e kv) bool {
		if !optional(e) {
			got = append(got, show(e))
		}
		return true
	})
	var want []string
	for _, k := range keys {
		e := model[k]
		g, ok := mb.get([]byte(k))
		if optional(e) {
			if ok && !g.del {
				t.Errorf("get %s: %q, want a tombstone or nothing", k, g.v)
			}
			continue
		}
		if !ok || !bytes.Equal(g.v, e.v) || g.del != e.del {
			t.Errorf("get %s: %q %v %v, want %q del %v", k, g.v, g.del, ok, e.v, e.del)
		}
		want = append(want, show(e))
	}
	if !slices.Equal(got, want) {
		t.Errorf("scan: only got %q, only wanted %q", minus(got, want), minus(want, got))
	}
	// A cursor over the runs sees the values (tombstones hide their keys).
	c := &cursor{}
	for j := len(mb.runs) - 1; j >= 0; j-- {
		c.mem = append(c.mem, memIter{w: mb.runs[j]})
	}
	var seen []string
	for k, v := c.First(); k != nil; k, v = c.Next() {
		seen = append(seen, string(k)+"="+string(v))
	}
	var live []string
	for _, k := range keys {
		if e := model[k]; !e.del {
			live = append(live, k+"="+string(e.v))
		}
	}
	if !slices.Equal(seen, live) {
		t.Errorf("cursor:\n got %q\nwant %q", seen, live)
	}
}

// minus returns the strings of a not in b.
func minus(a, b []string) []string {
	var out []string
	for _, s := range a {
		if !slices.Contains(b, s) {
			out = append(out, s)
		}
	}
	return out
}
