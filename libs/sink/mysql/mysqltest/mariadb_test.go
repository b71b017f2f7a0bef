package mysqltest

import (
	"testing"
)

func TestStartAnswers(t *testing.T) {
	s := Start(t)
	db := s.Open(t, "")
	var v string
	if err := db.QueryRow("SELECT VERSION()").Scan(&v); err != nil {
		t.Fatal(err)
	}
	if v == "" {
		t.Fatal("empty version")
	}
	t.Logf("MariaDB %s at %s", v, s.Addr)
}
