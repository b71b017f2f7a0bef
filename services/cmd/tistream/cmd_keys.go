package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/tistream/tistream/libs/crypt"
)

func init() {
	register(command{name: "keys", summary: "administer local key files (create, rotate, disable, enable, list) for kek_ref local:NAME", run: runKeys})
}

const keysUsage = `usage: tistream keys create|rotate|disable|enable --key-dir DIR --name NAME
       tistream keys list --key-dir DIR [--name NAME]

Local key-encryption keys for customer-managed keys (docs/formats/encryption.md):
  create   make DIR/NAME.key with one random version (never replaces a key)
  rotate   add a version: new objects use it, older ones stay readable
  disable  revoke the key: the tenants using it stop being served
  enable   undo disable
  list     the key files: reference, state, versions (never the keys)
`

// runKeys administers the key files of a --key-dir over libs/crypt's local
// key functions. Services read a key file at every KMS call, so a change
// applies to a running fleet within its --key-cache-ttl.
func runKeys(_ context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, keysUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	verb := args[0]
	fs := flag.NewFlagSet("keys "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("key-dir", "", "directory of local key files (the services' --key-dir)")
	name := fs.String("name", "", "key name: local:NAME is the file DIR/NAME.key")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "tistream keys %s: "+format+"\n", append([]any{verb}, a...)...)
		return code
	}
	if fs.NArg() > 0 {
		return fail(2, "unexpected arguments %q", fs.Args())
	}
	if *dir == "" {
		return fail(2, "--key-dir is required")
	}
	if verb != "list" && *name == "" {
		return fail(2, "--name is required")
	}
	ref := crypt.LocalScheme + ":" + *name
	switch verb {
	case "create":
		r, err := crypt.CreateLocalKey(*dir, *name)
		if err != nil {
			return fail(1, "%v", err)
		}
		fmt.Fprintf(stdout, "created %s (version 1); use it as a tenant's kek_ref: tistream admin update-tenant --kek %s\n", r, r)
	case "rotate":
		v, err := crypt.RotateLocalKey(*dir, *name)
		if err != nil {
			return fail(1, "%v", err)
		}
		fmt.Fprintf(stdout, "rotated %s: new objects use version %d; older versions stay readable\n", ref, v)
	case "disable", "enable":
		if err := crypt.SetLocalKeyDisabled(*dir, *name, verb == "disable"); err != nil {
			return fail(1, "%v", err)
		}
		if verb == "disable" {
			fmt.Fprintf(stdout, "disabled %s: its tenants stop being served within the services' --key-cache-ttl\n", ref)
		} else {
			fmt.Fprintf(stdout, "enabled %s\n", ref)
		}
	case "list":
		keys, err := crypt.ListLocalKeys(*dir)
		if err != nil {
			return fail(1, "%v", err)
		}
		bad := printKeys(stdout, keys, *name)
		if *name != "" && !hasKey(keys, *name) {
			return fail(1, "no key file %s.key in %s", *name, *dir)
		}
		if bad {
			return 1
		}
	default:
		fmt.Fprintf(stderr, "tistream keys: unknown subcommand %q\n\n%s", verb, keysUsage)
		return 2
	}
	return 0
}

func hasKey(keys []crypt.LocalKeyInfo, name string) bool {
	for _, k := range keys {
		if k.Name == name {
			return true
		}
	}
	return false
}

// printKeys prints the keys (only name's, if set) and reports whether any
// of them is unreadable.
func printKeys(w io.Writer, keys []crypt.LocalKeyInfo, name string) (bad bool) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "REF\tSTATE\tVERSIONS\tNEWEST")
	for _, k := range keys {
		if name != "" && k.Name != name {
			continue
		}
		switch {
		case k.Err != nil:
			bad = true
			fmt.Fprintf(tw, "%s\tunreadable: %v\t-\t-\n", k.Ref, k.Err)
		case k.Disabled:
			fmt.Fprintf(tw, "%s\tdisabled\t%d\t%d\n", k.Ref, k.Versions, k.Newest)
		default:
			fmt.Fprintf(tw, "%s\tenabled\t%d\t%d\n", k.Ref, k.Versions, k.Newest)
		}
	}
	tw.Flush()
	return bad
}
