package bench

import (
	"fmt"
	"testing"
)

// A contender that always ran right after the same heavy one would carry
// its cost in every round: over as many rounds as a workload has
// contenders, each of them must run first in its workload once and follow
// each of the others once, and the workloads keep the line-up's order.
func TestRoundOrderVariesWhoGoesBefore(t *testing.T) {
	sizes := []struct {
		w Workload
		n int
	}{{SeqRead, 4}, {SeqWrite, 6}, {SameServerCopy, 2}}
	var lineup []Contender
	for _, s := range sizes {
		for i := range s.n {
			lineup = append(lineup, Contender{Workload: s.w, Name: fmt.Sprint(i)})
		}
	}
	for _, s := range sizes {
		first := map[string]int{}
		follows := map[string]int{}
		for round := range s.n {
			order := RoundOrder(lineup, round)
			if len(order) != len(lineup) {
				t.Fatalf("round %d runs %d contenders, want %d", round, len(order), len(lineup))
			}
			for i, c := range order {
				if want := lineup[i].Workload; c.Workload != want {
					t.Fatalf("round %d runs %s %s at %d, where the line-up has %s", round, c.Workload, c.Name, i, want)
				}
				if c.Workload != s.w {
					continue
				}
				if i == 0 || order[i-1].Workload != s.w {
					first[c.Name]++
					continue
				}
				follows[c.Name+" after "+order[i-1].Name]++
			}
		}
		for a := range s.n {
			if n := first[fmt.Sprint(a)]; n != 1 {
				t.Errorf("%s: contender %d ran first in %d of %d rounds, want 1", s.w, a, n, s.n)
			}
			for b := range s.n {
				if a == b {
					continue
				}
				if n := follows[fmt.Sprintf("%d after %d", a, b)]; n != 1 {
					t.Errorf("%s: contender %d followed %d in %d of %d rounds, want 1", s.w, a, b, n, s.n)
				}
			}
		}
	}
}
