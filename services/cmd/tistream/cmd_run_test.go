package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// k8sContainer is the part of a Deployment this test reads.
type k8sObject struct {
	Kind string `yaml:"kind"`
	Data map[string]string
	Spec struct {
		Template struct {
			Spec struct {
				Containers []struct {
					Name string   `yaml:"name"`
					Args []string `yaml:"args"`
				} `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

func readK8s(t *testing.T) []k8sObject {
	t.Helper()
	files, err := filepath.Glob("../../../deploy/k8s/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	var objs []k8sObject
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var o k8sObject
			err := dec.Decode(&o)
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err, f)
			objs = append(objs, o)
		}
	}
	return objs
}

// TestDeployManifestsParse checks that every container of deploy/k8s runs
// a command line `tistream run` accepts with the ConfigMap's file: flags
// exist, the file has no unknown keys, and every setting validates.
func TestDeployManifestsParse(t *testing.T) {
	objs := readK8s(t)
	var config string
	for _, o := range objs {
		if o.Kind == "ConfigMap" && o.Data["tistream.yaml"] != "" {
			config = o.Data["tistream.yaml"]
		}
	}
	require.NotEmpty(t, config, "deploy/k8s has no ConfigMap with tistream.yaml")
	path := filepath.Join(t.TempDir(), "tistream.yaml")
	require.NoError(t, os.WriteFile(path, []byte(config), 0o644))
	env := strings.NewReplacer("$(POD_IP)", "10.0.0.7", "$(POD_NAME)", "pod-0", "/etc/tistream/tistream.yaml", path)
	seen := map[string]bool{}
	for _, o := range objs {
		if o.Kind != "Deployment" && o.Kind != "StatefulSet" {
			continue
		}
		for _, c := range o.Spec.Template.Spec.Containers {
			require.NotEmpty(t, c.Args, c.Name)
			require.Equal(t, "run", c.Args[0], c.Name)
			args := make([]string, len(c.Args)-1)
			for i, a := range c.Args[1:] {
				args[i] = env.Replace(a)
			}
			var stderr bytes.Buffer
			tgt, fc, err := parseRun(args, &stderr)
			require.NoError(t, err, "%s: %v\n%s", c.Name, args, stderr.String())
			require.Equal(t, c.Name, tgt.name)
			require.NotEmpty(t, fc.Etcd)
			seen[tgt.name] = true
		}
	}
	for _, tgt := range targets {
		require.True(t, seen[tgt.name], "deploy/k8s runs no %s", tgt.name)
	}
}

func TestRunRejectsBadCommandLines(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "-target is required"},
		{[]string{"-target=sorterr"}, `unknown -target "sorterr"`},
		{[]string{"-target=sorter", "--pool", "file:///tmp/p"}, "--etcd"},
		{[]string{"-target=dispatcher", "--etcd", "http://127.0.0.1:1", "--pool", "file:///tmp/p"}, "--buffer"},
		{[]string{"-target=api-server", "--etcd", "http://127.0.0.1:1", "--pool", "file:///tmp/p"}, "--schema-registry"},
		{[]string{"-target=sorter", "--etcd", "http://127.0.0.1:1", "--pool", "file:///tmp/p", "--flush-interval", "0s"}, "--flush-interval"},
		{[]string{"-target=sorter", "--no-such-flag"}, "no-such-flag"},
	} {
		_, _, err := parseRun(tc.args, io.Discard)
		require.ErrorContains(t, err, tc.want, "%v", tc.args)
		require.ErrorIs(t, err, errUsage)
	}
}

func TestRunConfigFileUnknownKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.yaml")
	require.NoError(t, os.WriteFile(path, []byte("etcd: [http://127.0.0.1:1]\npool: file:///tmp/p\nsorter:\n  insecure: true\n  flush_intervall: 1s\n"), 0o644))
	_, _, err := parseRun([]string{"-target=sorter", "--config", path}, io.Discard)
	require.ErrorContains(t, err, "flush_intervall")
	// Flags win over the file.
	require.NoError(t, os.WriteFile(path, []byte("etcd: [http://127.0.0.1:1]\npool: file:///tmp/p\nsorter:\n  insecure: true\n  flush_interval: 3s\n"), 0o644))
	_, fc, err := parseRun([]string{"-target=sorter", "--config", path, "--flush-interval", "2s"}, io.Discard)
	require.NoError(t, err)
	require.Equal(t, "2s", fc.Sorter.FlushInterval.String())
	_, fc, err = parseRun([]string{"-target=sorter", "--config", path}, io.Discard)
	require.NoError(t, err)
	require.Equal(t, "3s", fc.Sorter.FlushInterval.String())
}
