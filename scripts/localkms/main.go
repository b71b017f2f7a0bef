// Command tistream-localkms serves local-kms (github.com/nsmithuk/local-kms,
// an AWS-KMS-compatible server) on a loopback address only. The upstream
// binary binds every interface; the project's tests may listen on
// 127.0.0.1 only, so they run this instead (libs/crypt/kmstest).
//
// It prints "listening on HOST:PORT" once it accepts connections.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"

	"github.com/nsmithuk/local-kms/src"
	"github.com/nsmithuk/local-kms/src/config"
	"github.com/nsmithuk/local-kms/src/data"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "loopback address to serve on")
	dataDir := flag.String("data", "", "database directory (required)")
	region := flag.String("region", "us-east-1", "region of the keys")
	account := flag.String("account", "111122223333", "account id of the keys")
	flag.Parse()
	if *dataDir == "" {
		log.Fatal("tistream-localkms: -data is required")
	}
	host, _, err := net.SplitHostPort(*listen)
	if err != nil {
		log.Fatalf("tistream-localkms: -listen %q: %v", *listen, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		log.Fatalf("tistream-localkms: -listen %q is not a loopback address", *listen)
	}
	config.AWSRegion, config.AWSAccountId = *region, *account
	if config.DatabasePath, err = filepath.Abs(*dataDir); err != nil {
		log.Fatal(err)
	}
	db := data.NewDatabase(config.DatabasePath)
	defer db.Close()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("tistream-localkms: %v", err)
	}
	fmt.Fprintf(os.Stdout, "listening on %s\n", ln.Addr())
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { src.HandleRequest(w, r, db) })
	log.Fatal(http.Serve(ln, h))
}
