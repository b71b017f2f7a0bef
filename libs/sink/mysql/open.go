package mysqlsink

import (
	"database/sql"
	"fmt"

	"github.com/go-sql-driver/mysql"
)

// Open opens the downstream with the session settings the sink's values
// need: TiDB's TIMESTAMPs are UTC, and zero dates are values TiDB keeps,
// so the session runs in UTC without the strict modes that refuse them.
func Open(dsn string) (*sql.DB, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("--dsn: %w", err)
	}
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	for k, v := range map[string]string{"time_zone": "'+00:00'", "sql_mode": "'NO_ENGINE_SUBSTITUTION'"} {
		if _, set := cfg.Params[k]; !set {
			cfg.Params[k] = v
		}
	}
	connector, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("--dsn: %w", err)
	}
	db := sql.OpenDB(connector)
	db.SetMaxOpenConns(4)
	return db, nil
}
