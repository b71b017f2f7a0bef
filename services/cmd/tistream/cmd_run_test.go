package main

import (
	"bytes"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

// k8sObject is the part of the manifests' objects these tests read.
type k8sObject struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name      string `yaml:"name"`
		Namespace string `yaml:"namespace"`
	} `yaml:"metadata"`
	Data map[string]string
	Spec struct {
		// Service
		ClusterIP                string         `yaml:"clusterIP"`
		PublishNotReadyAddresses bool           `yaml:"publishNotReadyAddresses"`
		Selector                 map[string]any `yaml:"selector"` // a Service's labels (a Deployment's matchLabels)
		// Certificate
		SecretName string   `yaml:"secretName"`
		DNSNames   []string `yaml:"dnsNames"`
		// Deployment
		Template struct {
			Metadata struct {
				Labels map[string]string `yaml:"labels"`
			} `yaml:"metadata"`
			Spec struct {
				Subdomain  string `yaml:"subdomain"`
				Containers []struct {
					Name string   `yaml:"name"`
					Args []string `yaml:"args"`
				} `yaml:"containers"`
				Volumes []struct {
					Name   string `yaml:"name"`
					Secret struct {
						SecretName string `yaml:"secretName"`
					} `yaml:"secret"`
				} `yaml:"volumes"`
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

// TestDeployPeersAdvertiseNamesTheirCertificatesCover: the members that
// others dial at the address they publish (a meta-server leader in its
// election, dispatchers and sorters in their etcd registrations) must
// publish an address their own certificate names, since the dialling member
// verifies it as any client does; the manifests' certificates are one per
// role, so the address is a per-pod DNS name — the pod's name under a
// headless Service that is the pod's subdomain (and publishes pods before
// they are ready: a sorter is dialled as soon as it registers). A pod IP
// would fail every such handshake.
func TestDeployPeersAdvertiseNamesTheirCertificatesCover(t *testing.T) {
	objs := readK8s(t)
	certs := map[string][]string{} // secret name -> DNS names
	services := map[string]k8sObject{}
	for _, o := range objs {
		switch o.Kind {
		case "Certificate":
			certs[o.Spec.SecretName] = o.Spec.DNSNames
		case "Service":
			services[o.Metadata.Name] = o
		}
	}
	dialled := map[string]bool{"meta-server": true, "dispatcher": true, "sorter": true}
	seen := 0
	for _, o := range objs {
		if o.Kind != "Deployment" && o.Kind != "StatefulSet" {
			continue
		}
		pod := o.Spec.Template.Spec
		for _, c := range pod.Containers {
			if !dialled[c.Name] {
				continue
			}
			seen++
			var listen, advertise string
			for _, a := range c.Args {
				if v, ok := strings.CutPrefix(a, "--grpc-addr="); ok {
					listen = v
				}
				if v, ok := strings.CutPrefix(a, "--advertise-addr="); ok {
					advertise = v
				}
			}
			if advertise == "" {
				advertise = listen
			}
			addr := strings.ReplaceAll(advertise, "$(POD_NAME)", "sorter-5d8c7b9f4-x2k4p")
			host, _, err := net.SplitHostPort(addr)
			require.NoError(t, err, "%s advertises %q", c.Name, advertise)
			require.NotContains(t, host, "$(", "%s advertises %q: only the pod's name is known per pod", c.Name, advertise)
			var names []string
			for _, v := range pod.Volumes {
				if v.Name == "tls" {
					names = certs[v.Secret.SecretName]
				}
			}
			require.NotEmpty(t, names, "%s: no certificate for its tls volume", c.Name)
			require.NoError(t, (&x509.Certificate{DNSNames: names}).VerifyHostname(host),
				"%s advertises %q, which its certificate (%v) does not name", c.Name, advertise, names)
			// host = POD.SUBDOMAIN.NAMESPACE.svc: a record only a headless
			// Service named SUBDOMAIN gives the pod.
			parts := strings.Split(host, ".")
			require.Len(t, parts, 4, "%s advertises %q: want $(POD_NAME).SUBDOMAIN.NAMESPACE.svc", c.Name, advertise)
			require.Equal(t, "svc", parts[3])
			require.Equal(t, pod.Subdomain, parts[1], "%s: the pod's subdomain must be the advertised name's", c.Name)
			require.Equal(t, o.Metadata.Namespace, parts[2], c.Name)
			svc, ok := services[pod.Subdomain]
			require.True(t, ok, "%s: no Service %q for the pods' subdomain", c.Name, pod.Subdomain)
			require.Equal(t, "None", svc.Spec.ClusterIP, "Service %s must be headless", pod.Subdomain)
			require.True(t, svc.Spec.PublishNotReadyAddresses, "Service %s must publish pods before they are ready", pod.Subdomain)
			require.Equal(t, o.Metadata.Namespace, svc.Metadata.Namespace, pod.Subdomain)
			for k, v := range svc.Spec.Selector {
				require.Equal(t, v, any(o.Spec.Template.Metadata.Labels[k]), "Service %s does not select %s's pods", pod.Subdomain, c.Name)
			}
			require.NotEmpty(t, svc.Spec.Selector, pod.Subdomain)
		}
	}
	require.Equal(t, len(dialled), seen, "deploy/k8s runs each dialled member once")
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
