package bench

import (
	"fmt"
	"image/color"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

// WriteChart draws the median throughput of every contender as grouped
// bars — sequential read, sequential write, and the machine's limits —
// with the min–max range as error bars, and saves it as a PNG at path.
func WriteChart(path, title string, ss []Summary) error {
	var names []string
	for _, s := range ss {
		if !contains(names, s.Contender) {
			names = append(names, s.Contender)
		}
	}
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = "MB/s (median, min–max)"
	p.Y.Min = 0
	series := []struct {
		w     Workload
		label string
		c     color.RGBA
	}{
		{SeqRead, "sequential read", color.RGBA{R: 0x1f, G: 0x77, B: 0xb4, A: 0xff}},
		{SeqWrite, "sequential write", color.RGBA{R: 0xff, G: 0x7f, B: 0x0e, A: 0xff}},
		{Limit, "machine limit", color.RGBA{R: 0x7f, G: 0x7f, B: 0x7f, A: 0xff}},
	}
	// Bars of a group are a quarter of a category apart, in data units,
	// so that the error bars can be placed on them; about 24 points at
	// this size, so bars 18 points wide do not touch.
	const step = 0.25
	width := vg.Points(18)
	for i, se := range series {
		vals := make(plotter.Values, len(names))
		var errs errPoints
		shift := float64(i-1) * step
		for j, n := range names {
			if s := find(ss, string(se.w), n); s != nil && s.N > 0 {
				vals[j] = s.Median
				errs = append(errs, errPoint{x: float64(j) + shift, y: s.Median, lo: s.Median - s.Min, hi: s.Max - s.Median})
			}
		}
		bars, err := plotter.NewBarChart(vals, width)
		if err != nil {
			return fmt.Errorf("bench: chart: %w", err)
		}
		bars.Color = se.c
		bars.LineStyle.Width = 0
		bars.XMin = shift
		p.Add(bars)
		p.Legend.Add(se.label, bars)
		if len(errs) > 0 {
			eb, err := plotter.NewYErrorBars(errs)
			if err != nil {
				return fmt.Errorf("bench: chart: %w", err)
			}
			p.Add(eb)
		}
	}
	p.Legend.Top = true
	p.Legend.Left = true
	p.Legend.XOffs = vg.Points(60)
	p.NominalX(names...)
	p.X.Min, p.X.Max = -0.6, float64(len(names))-0.4
	if err := p.Save(9*vg.Inch, 4.5*vg.Inch, path); err != nil {
		return fmt.Errorf("bench: chart: %w", err)
	}
	return nil
}

// errPoint is one error bar: at (x, y), from y-lo to y+hi.
type errPoint struct{ x, y, lo, hi float64 }

type errPoints []errPoint

func (e errPoints) Len() int                        { return len(e) }
func (e errPoints) XY(i int) (float64, float64)     { return e[i].x, e[i].y }
func (e errPoints) YError(i int) (float64, float64) { return e[i].lo, e[i].hi }
