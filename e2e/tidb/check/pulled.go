// Package check compares what TiStream pulled with TiDB's own MVCC: the
// image of each table folded from a pulled stream up to a resolved ts R
// (last value per key, deletes removed) must equal the table's record
// range read from TiDB's store at version R, key by key and byte by byte.
package check

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
)

// Pulled is a pulled stream (tistream pull's JSON Lines), kept as the
// last change of each key at each commit ts.
type Pulled struct {
	rows []pulledRow
	// Resolved are the resolved ts the stream carried, in order.
	Resolved []uint64
}

type pulledRow struct {
	key      string
	startTs  uint64
	commitTs uint64
	del      bool
	value    string
}

type pullLine struct {
	Type     string `json:"type"`
	CommitTs uint64 `json:"commit_ts"`
	Op       string `json:"op"`
	Key      string `json:"key"`
	Value    string `json:"value"`
	Ts       uint64 `json:"ts"`
}

// ReadPulled reads the pulled streams in the files (several pulls of one
// tenant, say by table, fold into one image).
func ReadPulled(paths ...string) (*Pulled, error) {
	p := &Pulled{}
	for _, path := range paths {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		err = p.read(f, path)
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	sort.SliceStable(p.rows, func(i, j int) bool { return p.rows[i].commitTs < p.rows[j].commitTs })
	return p, nil
}

func (p *Pulled) read(r io.Reader, name string) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for n := 1; sc.Scan(); n++ {
		var l pullLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return fmt.Errorf("%s:%d: %w", name, n, err)
		}
		switch l.Type {
		case "", "row":
			key, err := hex.DecodeString(l.Key)
			if err != nil {
				return fmt.Errorf("%s:%d: key: %w", name, n, err)
			}
			p.rows = append(p.rows, pulledRow{key: string(key), commitTs: l.CommitTs, del: l.Op == "delete", value: l.Value})
		case "resolved":
			p.Resolved = append(p.Resolved, l.Ts)
		}
	}
	return sc.Err()
}

// LastResolved is the greatest resolved ts of the stream.
func (p *Pulled) LastResolved() uint64 {
	var m uint64
	for _, r := range p.Resolved {
		m = max(m, r)
	}
	return m
}

// Image folds the stream up to r: the value (hex) of every live key.
func (p *Pulled) Image(r uint64) map[string]string {
	img := make(map[string]string)
	for _, row := range p.rows {
		if row.commitTs > r {
			break
		}
		if row.del {
			delete(img, row.key)
		} else {
			img[row.key] = row.value
		}
	}
	return img
}

// Points picks n resolved ts of the stream, spread evenly, the last one
// included.
func (p *Pulled) Points(n int) []uint64 {
	var uniq []uint64
	for _, r := range p.Resolved {
		if len(uniq) == 0 || r > uniq[len(uniq)-1] {
			uniq = append(uniq, r)
		}
	}
	if len(uniq) <= n {
		return uniq
	}
	out := make([]uint64, 0, n)
	for i := 1; i <= n; i++ {
		out = append(out, uniq[i*len(uniq)/n-1])
	}
	return out
}
