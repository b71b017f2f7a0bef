package client

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestConsumerDependencies proves what importing the client brings into a
// consumer: gRPC, protobuf, the generated API and libs/tidbcodec, and
// nothing of TiStream's servers (their module pins pebble, etcd, the AWS
// SDK and kvproto). go list resolves the package's imports (tests
// excluded) as a consumer's build would.
func TestConsumerDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{with .Module}}{{.Path}}{{end}}", ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	allowedModules := map[string]bool{
		"":                                    true, // the standard library
		"github.com/tistream/tistream/client": true,
		"github.com/tistream/tistream/libs/tidbcodec": true,
		"github.com/tistream/tistream/proto/gen/go":   true,
		"google.golang.org/grpc":                      true,
		"google.golang.org/protobuf":                  true,
		"google.golang.org/genproto/googleapis/rpc":   true,
		"golang.org/x/net":                            true,
		"golang.org/x/sys":                            true,
		"golang.org/x/text":                           true,
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, mod, _ := strings.Cut(line, " ")
		require.True(t, allowedModules[mod], "the client imports %s (module %q)", pkg, mod)
		for _, banned := range []string{"pebble", "etcd", "aws", "kvproto", "prometheus"} {
			require.NotContains(t, pkg, banned)
		}
		n++
	}
	require.Greater(t, n, 50, "go list listed too little to mean anything:\n%s", out)

	// The module itself requires no TiStream module but the two it uses.
	gomod, err := os.ReadFile("go.mod")
	require.NoError(t, err)
	for _, line := range strings.Split(string(gomod), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && strings.HasPrefix(f[0], "github.com/tistream/tistream") && !strings.HasPrefix(line, "\t// ") {
			require.Contains(t, []string{"github.com/tistream/tistream/libs/tidbcodec", "github.com/tistream/tistream/proto/gen/go"}, f[0], "go.mod: %s", line)
		}
	}
}
