package verify

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/tistream/tistream/libs/truth"
)

// Check reads the truth file and the pulled stream and checks the stream
// against the contract. It returns an error only when an input cannot be
// read or is malformed (a *truth.LineError names the file and line); every
// contract problem is a violation in the Report.
func Check(truthIn, pulledIn io.Reader, opts Options) (*Report, error) {
	opts = opts.withDefaults()
	c := &checker{
		opts:   opts,
		scope:  newScope(opts),
		idx:    newIndex(),
		tables: make(map[tableKey]*tableState),
	}
	c.rep = &Report{TruthName: opts.TruthName, PulledName: opts.PulledName,
		Scope: c.scope.String(), Partial: opts.Partial}
	for k := range c.viol {
		c.viol[k].Kind = Kind(k)
	}
	if err := c.readTruth(truth.NewReader(truthIn, opts.TruthName)); err != nil {
		return nil, err
	}
	if err := c.readPulled(truth.NewReader(pulledIn, opts.PulledName)); err != nil {
		return nil, err
	}
	c.finish()
	return c.rep, nil
}

type checker struct {
	opts   Options
	scope  scope
	idx    *index
	rep    *Report
	viol   [numKinds]Violation
	tables map[tableKey]*tableState
	last   *tableState // streams come in runs of one table: skip the map then
}

func (c *checker) readTruth(r *truth.Reader) error {
	p := prefetch(r)
	defer p.stop()
	ended := false
	for {
		l, err := p.next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if ended {
			return &truth.LineError{Name: r.Name(), Line: l.Num, Msg: "a line after the end line"}
		}
		switch l.Kind {
		case truth.KindRow:
			c.rep.TruthRows++
			row := &l.Row
			// Rows the pull does not cover are never looked up: a pulled
			// row outside the scope is a violation by itself.
			if !c.scope.covers(row.Tenant, row.TableID, row.CommitTs) {
				continue
			}
			if l.Num > maxTruthLine {
				return &truth.LineError{Name: r.Name(), Line: l.Num, Msg: "too many lines to index"}
			}
			c.rep.TruthInFilter++
			if first, ok := c.idx.add(row, l.Num); !ok {
				return &truth.LineError{Name: r.Name(), Line: l.Num, Msg: fmt.Sprintf(
					"tenant %d key %x commit_ts %d is already at line %d: a truth file lists each change once",
					row.Tenant, row.Key, row.CommitTs, first)}
			}
		case truth.KindEnd:
			ended = true
			c.rep.TruthEnd = l.End.ResolvedTs
		default:
			c.rep.OtherLines++
		}
	}
	if !ended {
		return fmt.Errorf(`%s: no end line: a truth file ends with {"type":"end","resolved_ts":N} (truncated?)`, r.Name())
	}
	return nil
}

func (c *checker) readPulled(r *truth.Reader) error {
	p := prefetch(r)
	defer p.stop()
	for {
		l, err := p.next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		switch l.Kind {
		case truth.KindRow:
			c.row(&l.Row, l.Num)
		case truth.KindResolved:
			c.resolved(l.Resolved.Ts, l.Num)
		default:
			c.rep.OtherLines++
		}
	}
}

// add counts a violation and keeps it as an example while there is room;
// detail is called only then, so millions of violations cost no formatting.
func (c *checker) add(k Kind, ex Example, detail func() string) {
	v := &c.viol[k]
	v.Count++
	if len(v.Examples) < c.opts.Examples {
		ex.Key = bytes.Clone(ex.Key)
		ex.Detail = detail()
		v.Examples = append(v.Examples, ex)
	}
}

func rowExample(r *truth.Row, line int64) Example {
	return Example{PulledLine: line, Tenant: r.Tenant, TableID: r.TableID, Key: r.Key,
		CommitTs: r.CommitTs, StartTs: r.StartTs}
}

func (c *checker) table(tenant uint64, id int64) *tableState {
	if t := c.last; t != nil && t.count.TableID == id && t.count.Tenant == tenant {
		return t
	}
	k := tableKey{tenant, id}
	t := c.tables[k]
	if t == nil {
		t = &tableState{count: TableCount{Tenant: tenant, TableID: id}}
		c.tables[k] = t
	}
	c.last = t
	return t
}

func (c *checker) resolved(ts uint64, line int64) {
	rep := c.rep
	rep.ResolvedEvents++
	if rep.HasResolved && ts < rep.LastResolved {
		c.add(ResolvedRegressed, Example{PulledLine: line}, func() string {
			return fmt.Sprintf("resolved %d is below resolved %d at pulled line %d",
				ts, rep.LastResolved, rep.LastResolvedLine)
		})
		return
	}
	if !rep.HasResolved || ts > rep.LastResolved {
		rep.HasResolved, rep.LastResolved, rep.LastResolvedLine = true, ts, line
	}
}

func (c *checker) row(r *truth.Row, line int64) {
	rep := c.rep
	rep.PulledRows++
	if !c.scope.covers(r.Tenant, r.TableID, r.CommitTs) {
		c.add(OutOfScope, rowExample(r, line), func() string {
			return c.scope.outside(r.Tenant, r.TableID, r.CommitTs)
		})
		return
	}
	t := c.table(r.Tenant, r.TableID)
	t.count.Pulled++
	if rep.HasResolved && r.CommitTs <= rep.LastResolved {
		c.add(AfterResolved, rowExample(r, line), func() string {
			return fmt.Sprintf("comes after resolved %d at pulled line %d, which promised no row at or below it",
				rep.LastResolved, rep.LastResolvedLine)
		})
	}
	if k, ok := t.order(r.CommitTs, r.StartTs, line); !ok {
		c.add(k, rowExample(r, line), func() string { return t.detail(k) })
	}
	c.match(r, line)
}

// match looks the row up in the truth: phantom, duplicate, wrong content or
// wrong schema version, or else a delivery that completeness will count.
func (c *checker) match(r *truth.Row, line int64) {
	e, found := c.idx.lookup(r)
	if !found {
		c.add(Phantom, rowExample(r, line), func() string {
			if r.CommitTs > c.rep.TruthEnd {
				return fmt.Sprintf("not in the truth, and commit_ts is above the truth's end %d", c.rep.TruthEnd)
			}
			return "not in the truth (rolled back, never committed, or a wrong commit_ts)"
		})
		return
	}
	if e.pulledLine != 0 {
		c.add(Duplicate, rowExample(r, line), func() string {
			return fmt.Sprintf("already pulled at line %d (truth line %d)", e.pulledLine, e.truthLine)
		})
		return
	}
	e.pulledLine = line
	if diff := contentDiff(c.idx, r, e); diff != nil {
		e.bad = true
		c.add(WrongContent, rowExample(r, line), diff)
	}
	if r.SchemaVersion != 0 && e.schemaVer != 0 && r.SchemaVersion != e.schemaVer {
		e.bad = true
		c.add(WrongSchemaVersion, rowExample(r, line), func() string {
			return fmt.Sprintf("schema_version %d, want %d (truth line %d)", r.SchemaVersion, e.schemaVer, e.truthLine)
		})
	}
}
