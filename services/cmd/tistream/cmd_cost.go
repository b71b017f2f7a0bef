package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"strings"

	"github.com/tistream/tistream/libs/objstore/metered"
)

func init() {
	register(command{name: "cost", summary: "monthly object-store request cost of a fleet, fitted from `tistream lag --requests-out` runs", run: runCost})
}

// fleetShape is the fleet a cost is projected for.
type fleetShape struct {
	Stores, Ranges int
	RowsPerSec     float64
}

func (f fleetShape) driver(d string) float64 {
	switch d {
	case driverStores:
		return float64(f.Stores)
	case driverRanges:
		return float64(f.Ranges)
	}
	return 1
}

func (r *requestRun) shape() fleetShape {
	return fleetShape{Stores: r.Stores, Ranges: r.Ranges, RowsPerSec: r.rowsPerSec()}
}

// point is one run's rate of one line and price class: y requests per
// second with driver count d and rho rows per second.
type point struct{ d, rho, y float64 }

// model is y = PerDriver*d + PerRow*rho.
type model struct {
	PerDriver, PerRow float64
	// How it was fitted: "two terms", "driver only", "rows only".
	How string
}

func (m model) at(d, rho float64) float64 { return m.PerDriver*d + m.PerRow*rho }

// fitModel fits y = a*d + b*rho with a, b >= 0 by least squares. Runs that
// cannot tell the two terms apart (one run, or runs with the same rows per
// driver) give the driver-only fit: requests scale with stores or ranges,
// the shape of the measured runs. A negative term is dropped and the other
// refitted alone, whichever of the two fits better.
func fitModel(ps []point) model {
	var sdd, sdr, srr, sdy, sry float64
	for _, p := range ps {
		sdd += p.d * p.d
		sdr += p.d * p.rho
		srr += p.rho * p.rho
		sdy += p.d * p.y
		sry += p.rho * p.y
	}
	driverOnly := model{How: "driver only"}
	if sdd > 0 {
		driverOnly.PerDriver = max(sdy/sdd, 0)
	}
	det := sdd*srr - sdr*sdr
	if sdd == 0 || srr == 0 || det <= 1e-9*sdd*srr {
		return driverOnly
	}
	a, b := (sdy*srr-sdr*sry)/det, (sdd*sry-sdr*sdy)/det
	if a >= 0 && b >= 0 {
		return model{PerDriver: a, PerRow: b, How: "two terms"}
	}
	rowsOnly := model{PerRow: max(sry/srr, 0), How: "rows only"}
	if residual(ps, rowsOnly) < residual(ps, driverOnly) {
		return rowsOnly
	}
	return driverOnly
}

func residual(ps []point, m model) float64 {
	r := 0.0
	for _, p := range ps {
		e := m.at(p.d, p.rho) - p.y
		r += e * e
	}
	return r
}

// lineClassRate is a run's requests per second of one cost line and price
// class.
func lineClassRate(r *requestRun, line int, class string) float64 {
	n := sum(r.Requests, func(s metered.Sample) bool { return lineOf(s) == line && priceClass(s.Kind) == class })
	return n / r.Seconds
}

// monthly is the request cost per month of rates by price class.
func monthly(perSec map[string]float64) float64 {
	c := 0.0
	for class, v := range perSec {
		c += v * secondsPerMonth / 1000 * pricePer1000[class]
	}
	return c
}

// printCost fits each cost line over the runs and prints the projection
// for fleet, and what each run itself costs per month.
func printCost(w io.Writer, runs []*requestRun, fleet fleetShape) {
	fmt.Fprintf(w, "S3 Standard list prices: PUT, COPY, POST, LIST $%.4f per 1,000; GET and others $%.4f per 1,000; DELETE free; a month is 30 days\n\n",
		pricePer1000[classWrite], pricePer1000[classRead])
	fmt.Fprintln(w, "| run | stores | ranges | rows/s | lag p50 / p99 ms | PUT+LIST per s | GET per s | $ per month |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---|---:|---:|---:|")
	for _, r := range runs {
		rates := map[string]float64{}
		for line := range costLines {
			for _, class := range []string{classWrite, classRead} {
				rates[class] += lineClassRate(r, line, class)
			}
		}
		fmt.Fprintf(w, "| %s | %d | %d | %.0f | %s / %s | %s | %s | %s |\n", r.Label, r.Stores, r.Ranges, r.rowsPerSec(),
			fmtMs(r.LagP50Ms), fmtMs(r.LagP99Ms), fmtFloat(rates[classWrite]), fmtFloat(rates[classRead]), dollars(monthly(rates)))
	}
	fmt.Fprintf(w, "\nprojected for a fleet of %d stores, %d ranges, %.0f rows/s: requests/s = a × (stores or ranges) + b × rows/s, a and b fitted over the %d run(s)\n\n",
		fleet.Stores, fleet.Ranges, fleet.RowsPerSec, len(runs))
	fmt.Fprintln(w, "| requests | class | scales with | a: per driver per s | b: per 1,000 rows | fit | fleet per s | $ per month |")
	fmt.Fprintln(w, "|---|---|---|---:|---:|---|---:|---:|")
	total := 0.0
	for line, cl := range costLines {
		for _, class := range []string{classWrite, classRead, classFree} {
			var ps []point
			seen := false
			for _, r := range runs {
				y := lineClassRate(r, line, class)
				seen = seen || y > 0
				ps = append(ps, point{r.shape().driver(cl.driver), r.rowsPerSec(), y})
			}
			if !seen {
				continue
			}
			m := fitModel(ps)
			perSec := m.at(fleet.driver(cl.driver), fleet.RowsPerSec)
			cost := monthly(map[string]float64{class: perSec})
			total += cost
			fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", cl.name, class, cl.driver, fmtFloat(m.PerDriver),
				fmtFloat(m.PerRow*1000), m.How, fmtFloat(perSec), dollars(cost))
		}
	}
	fmt.Fprintf(w, "| total | | | | | | | %s |\n", dollars(total))
}

func dollars(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("$%s", groupThousands(math.Round(v)))
	case v >= 1:
		return fmt.Sprintf("$%.2f", v)
	}
	return fmt.Sprintf("$%.3f", v)
}

// groupThousands renders a whole number with commas.
func groupThousands(v float64) string {
	s := fmt.Sprintf("%.0f", v)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func runCost(_ context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("cost", flag.ContinueOnError)
	fs.SetOutput(stderr)
	runsFlag := fs.String("runs", "", "request runs written by `tistream lag --requests-out FILE`, comma-separated (two with different rows per range separate the per-range and per-row terms)")
	var fleet fleetShape
	fs.IntVar(&fleet.Stores, "stores", 100, "store streams (TiKV stores × tenants) of the fleet to price")
	fs.IntVar(&fleet.Ranges, "ranges", 10000, "sorter ranges of the fleet to price")
	fs.Float64Var(&fleet.RowsPerSec, "rows-per-sec", 100000, "row changes per second of the fleet to price")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: tistream cost --runs a.json[,b.json...] [--stores N] [--ranges N] [--rows-per-sec N]")
		fmt.Fprintln(stderr, "Prints each run's request cost per month at S3 list prices and projects a fleet's from them.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *runsFlag == "" || fleet.Stores < 1 || fleet.Ranges < 1 || fleet.RowsPerSec < 0 {
		fmt.Fprintln(stderr, "tistream cost: --runs is required; --stores and --ranges must be at least 1, --rows-per-sec not negative")
		return 2
	}
	var runs []*requestRun
	for _, p := range strings.Split(*runsFlag, ",") {
		r, err := readRequestRun(strings.TrimSpace(p))
		if err != nil {
			fmt.Fprintf(stderr, "tistream cost: %v\n", err)
			return 1
		}
		runs = append(runs, r)
	}
	printCost(stdout, runs, fleet)
	return 0
}
