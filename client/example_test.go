package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/tistream/tistream/client"
	apiv1 "github.com/tistream/tistream/proto/gen/go/tistream/api/v1"
)

// A CDC consumer: pull a whole tenant from its registration, decode each
// row into column names and values, and checkpoint on resolved events. A
// broken stream or a restarted api-server is reconnected inside Next.
func ExampleClient_Pull() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.Dial(apiAddr, client.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	stream, err := c.Pull(ctx, client.Tenant(1), 0)
	if err != nil {
		log.Fatal(err)
	}
	defer stream.Close()
	dec := c.NewDecoder(1)
	rows, withID := 0, 0
	var checkpoint uint64
	for rows < 200 || checkpoint == 0 {
		ev, err := stream.Next()
		if err != nil {
			log.Fatal(err)
		}
		if err := dec.Observe(ev); err != nil { // learn the schemas the DDLs carry
			log.Fatal(err)
		}
		switch ev.Kind {
		case client.EventRow:
			r, err := dec.Decode(ctx, ev.Row)
			if err != nil {
				log.Fatal(err)
			}
			cols := r.Columns
			if r.Delete {
				cols = r.Old // a delete has its old value, or at least its key
			}
			if len(cols) > 0 && cols[0].Name == "id" && cols[0].Value == r.Handle {
				withID++
			}
			rows++
		case client.EventResolved:
			checkpoint = ev.Resolved // everything up to it is delivered
		}
	}
	fmt.Println("rows decoded:", rows >= 200)
	fmt.Println("rows keyed by their id column:", withID == rows)
	fmt.Println("checkpointed:", checkpoint > 0)
	// Output:
	// rows decoded: true
	// rows keyed by their id column: true
	// checkpointed: true
}

// DDL events carry the statement TiDB ran, its job type and the table's
// new definition.
func ExampleEvent_ddl() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := client.Dial(apiAddr, client.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	stream, err := c.Pull(ctx, client.Tenant(1), 0)
	if err != nil {
		log.Fatal(err)
	}
	defer stream.Close()
	for {
		ev, err := stream.Next()
		if err != nil {
			log.Fatal(err)
		}
		if ev.Kind == client.EventDDL && ev.DDL.Kind == apiv1.DDL_KIND_CREATE_TABLE {
			d := ev.DDL
			fmt.Println(strings.HasPrefix(d.Query, "CREATE TABLE"), d.JobType, len(d.TableInfoJson) > 0)
			break
		}
	}
	// Output:
	// true 3 true
}

// Errors a retry cannot fix are typed.
func ExampleOutOfRangeError() {
	c, err := client.Dial(apiAddr, client.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	stream, err := c.Pull(context.Background(), client.Table(1, "db1", "no_such_table"), 0)
	if err != nil {
		log.Fatal(err)
	}
	_, err = stream.Next()
	var oor *client.OutOfRangeError
	fmt.Println(errors.Is(err, client.ErrNotFound), errors.As(err, &oor))
	// Output:
	// true false
}
