package server

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/pingcap/tidb/pkg/kv"
	"github.com/tistream/tistream/e2e/tidb/capture"
)

// Handler serves what the image check and the tests ask of the running
// TiDB, on its own HTTP address:
//
//	GET  /tso                       a fresh TSO
//	GET  /stream                    {"start_ts": the schema snapshot's ts}
//	GET  /tables?ts=N               the tables at N (JSON array of Table)
//	GET  /scan?start=HEX&end=HEX&ts=N  every key and value of [start, end) at N, one JSON object a line
//	GET  /stats                     the capture's counters
//	GET  /locks                     the oldest locks of the capture's model (what holds resolved ts back)
//	POST /transfer-all              move every region's leadership to the next store
//	POST /crash?table=ID&from=H&rows=N&mode=rollback|commit  a transaction whose client dies after prewrite
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /tso", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, capture.TSO())
	})
	mux.HandleFunc("GET /stream", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]uint64{"start_ts": s.StreamStart})
	})
	mux.HandleFunc("GET /tables", func(w http.ResponseWriter, r *http.Request) {
		ts, err := strconv.ParseUint(r.URL.Query().Get("ts"), 10, 64)
		if err != nil {
			http.Error(w, "ts: "+err.Error(), http.StatusBadRequest)
			return
		}
		sc, err := s.ReadSchema(ts)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		writeJSON(w, sc.Tables)
	})
	mux.HandleFunc("GET /scan", s.scan)
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, s.Capture.Stats())
	})
	mux.HandleFunc("GET /locks", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, s.Capture.OldestLocks(20))
	})
	mux.HandleFunc("POST /crash", s.crash)
	mux.HandleFunc("POST /transfer-all", func(w http.ResponseWriter, r *http.Request) {
		s.Capture.TransferAll()
	})
	return mux
}

// ScanPair is one line of /scan.
type ScanPair struct {
	Key   string `json:"k"` // hex
	Value string `json:"v"` // hex
}

func (s *Server) scan(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ts, err := strconv.ParseUint(q.Get("ts"), 10, 64)
	if err != nil {
		http.Error(w, "ts: "+err.Error(), http.StatusBadRequest)
		return
	}
	start, err1 := hex.DecodeString(q.Get("start"))
	end, err2 := hex.DecodeString(q.Get("end"))
	if err1 != nil || err2 != nil || len(end) == 0 {
		http.Error(w, "start and end must be hex, end non-empty", http.StatusBadRequest)
		return
	}
	it, err := s.Store.GetSnapshot(kv.NewVersion(ts)).Iter(start, end)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer it.Close()
	enc := json.NewEncoder(w)
	for it.Valid() {
		if err := enc.Encode(ScanPair{Key: hex.EncodeToString(it.Key()), Value: hex.EncodeToString(it.Value())}); err != nil {
			return
		}
		if err := it.Next(); err != nil {
			// The client sees a truncated stream without the end marker.
			return
		}
	}
	_ = enc.Encode(ScanPair{Key: "end"})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
