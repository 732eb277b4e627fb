package main

// The cluster side of running a real Kyverno beside a test-bed apiserver: its namespace, its
// identity's RBAC, the Secrets holding the serving certificate the test bed issued for it, its
// configuration, and its CRDs (the YAML files shipped in the Kyverno module, posted as they
// are). Unlike Gatekeeper, Kyverno registers its own webhooks (by URL, because it is told
// --serverIP), so `kyverno-wait` only waits until it has.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// KyvernoUser is the token user the Kyverno controllers' kubeconfig authenticates as.
const KyvernoUser = "kyverno"

// KyvernoNamespace is Kyverno's own namespace (its default): its Secrets, ConfigMap and
// leader-election Leases, and the one namespace where it accepts PolicyExceptions here.
const KyvernoNamespace = "kyverno"

// The names Kyverno is told (--caSecretName, --tlsSecretName) and reads at start.
const (
	KyvernoCASecret  = "kyverno-testbed-ca"
	KyvernoTLSSecret = "kyverno-testbed-tls"
)

// kyvernoWebhooks are the configurations Kyverno writes once it leads: the one that
// validates its own policies, and the ones for resources that its policies select.
var kyvernoWebhooks = []string{"kyverno-policy-validating-webhook-cfg", "kyverno-resource-validating-webhook-cfg"}

var kyvernoLabels = map[string]any{"app.kubernetes.io/part-of": "palisade-testbed"}

// kyvernoRules is what the admission and reports controllers need as the test bed runs them
// (no certificate manager, no cleanup or background controller). It follows the cluster roles
// of upstream's chart for those two controllers: they read every kind (policies may match
// anything, and the background scan lists what they match), own Kyverno's API groups and the
// report groups, and the admission controller writes its own webhook configurations.
var kyvernoRules = []rule{
	{[]string{"*"}, []string{"*"}, read},
	{[]string{""}, []string{"events"}, []string{"create", "patch", "update"}},
	{[]string{"events.k8s.io"}, []string{"events"}, []string{"create", "patch", "update"}},
	{[]string{"kyverno.io", "policies.kyverno.io", "reports.kyverno.io", "wgpolicyk8s.io"}, []string{"*"},
		append(append([]string{}, manage...), "deletecollection")},
	{[]string{"admissionregistration.k8s.io"}, []string{"validatingwebhookconfigurations", "mutatingwebhookconfigurations"}, manage},
}

// kyvernoNamespaceRules are its rights inside its own namespace only: its Secrets and
// ConfigMaps (read), and the Leases of leader election.
var kyvernoNamespaceRules = []rule{
	{[]string{""}, []string{"secrets", "configmaps"}, read},
	{[]string{"coordination.k8s.io"}, []string{"leases"}, manage},
}

// kyvernoConfig is Kyverno's ConfigMap: its webhooks skip its own namespace and the
// apiserver's, and events and the system namespaces are filtered out, as upstream's chart does.
var kyvernoConfig = map[string]any{
	"resourceFilters": "[Event,*,*][*/*,kube-system,*][*/*,kube-public,*][*/*,kube-node-lease,*]" +
		"[*/*,kyverno,*][Lease,*,*][APIService,*,*][TokenReview,*,*][SubjectAccessReview,*,*]" +
		"[SelfSubjectAccessReview,*,*][ReportChangeRequest,*,*][ClusterReportChangeRequest,*,*]",
	"webhooks": `{"namespaceSelector":{"matchExpressions":[{"key":"kubernetes.io/metadata.name",` +
		`"operator":"NotIn","values":["kube-system","kyverno"]}]}}`,
	"excludeGroups":         "system:nodes",
	"generateSuccessEvents": "false",
}

// kyvernoInstall prepares a cluster for Kyverno: namespace, RBAC, the serving certificate as
// Secrets, the ConfigMap and the CRDs. PKI_DIR holds ca.crt/ca.key and apiserver.crt/.key
// issued for 127.0.0.1 (from `pki`). It returns once every CRD is established and the RBAC
// authorizer honours the bindings.
func kyvernoInstall(args []string) error {
	if len(args) != 4 {
		return errors.New("usage: kyverno-install DIR SERVER CRD_DIR KYVERNO_PKI_DIR")
	}
	a, err := newAdmin(args[0], args[1])
	if err != nil {
		return err
	}
	if err := a.apply("/api/v1/namespaces", KyvernoNamespace, map[string]any{
		"apiVersion": "v1", "kind": "Namespace",
		"metadata": map[string]any{"name": KyvernoNamespace, "labels": kyvernoLabels},
	}); err != nil {
		return err
	}
	if err := kyvernoRBAC(a); err != nil {
		return err
	}
	if err := kyvernoSecrets(a, args[3]); err != nil {
		return err
	}
	ns := "/api/v1/namespaces/" + KyvernoNamespace
	if err := a.apply(ns+"/configmaps", "kyverno", map[string]any{
		"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "kyverno", "namespace": KyvernoNamespace, "labels": kyvernoLabels},
		"data":     kyvernoConfig,
	}); err != nil {
		return err
	}
	names, err := postCRDs(a, args[2])
	if err != nil {
		return err
	}
	if err := waitNamedEstablished(a, names, 60*time.Second); err != nil {
		return err
	}
	return waitAllowed(a, KyvernoUser, map[string]any{
		"namespace": KyvernoNamespace, "group": "coordination.k8s.io", "resource": "leases", "verb": "create",
	}, 30*time.Second)
}

func kyvernoRBAC(a *admin) error {
	if err := a.grantClusterRole(KyvernoUser, kyvernoLabels, kyvernoRules); err != nil {
		return err
	}
	const rbac = "/apis/rbac.authorization.k8s.io/v1"
	subjects := []any{map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": KyvernoUser}}
	ns := rbac + "/namespaces/" + KyvernoNamespace
	meta := map[string]any{"name": KyvernoUser, "namespace": KyvernoNamespace, "labels": kyvernoLabels}
	if err := a.apply(ns+"/roles", KyvernoUser, map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": meta,
		"rules": kyvernoNamespaceRules,
	}); err != nil {
		return err
	}
	return a.apply(ns+"/rolebindings", KyvernoUser, map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": meta,
		"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": KyvernoUser},
		"subjects": subjects,
	})
}

// kyvernoSecrets stores the test bed's CA (certificate and key, as Kyverno's own certificate
// manager would) and the serving pair issued by it, in the Secrets Kyverno is told to read.
func kyvernoSecrets(a *admin, pkiDir string) error {
	read := func(name string) (string, error) {
		b, err := os.ReadFile(filepath.Join(pkiDir, name))
		return string(b), err
	}
	files := map[string]string{}
	for _, f := range []string{"ca.crt", "ca.key", "apiserver.crt", "apiserver.key"} {
		v, err := read(f)
		if err != nil {
			return err
		}
		files[f] = v
	}
	ns := "/api/v1/namespaces/" + KyvernoNamespace + "/secrets"
	for name, pair := range map[string][2]string{
		KyvernoCASecret:  {files["ca.crt"], files["ca.key"]},
		KyvernoTLSSecret: {files["apiserver.crt"], files["apiserver.key"]},
	} {
		if err := a.apply(ns, name, map[string]any{
			"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
			"metadata":   map[string]any{"name": name, "namespace": KyvernoNamespace, "labels": kyvernoLabels},
			"stringData": map[string]any{"tls.crt": pair[0], "tls.key": pair[1]},
		}); err != nil {
			return err
		}
	}
	return nil
}

// postCRDs creates every CRD in dir (one document per *.yaml file) and returns their names,
// read from the apiserver's answer.
func postCRDs(a *admin, dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no CRD files (*.yaml) in %s", dir)
	}
	sort.Strings(files)
	const crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
	var names []string
	for _, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		body = bytes.TrimPrefix(bytes.TrimLeft(body, "\n"), []byte("---\n"))
		code, reply, err := a.send(http.MethodPost, crds, "application/yaml", body)
		if err != nil {
			return nil, err
		}
		// Created: the answer is the CRD. Already there (a second `up` on the same state): the
		// answer is a Status naming it.
		var answer struct {
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
			Details struct {
				Name string `json:"name"`
			} `json:"details"`
		}
		if code != http.StatusCreated && code != http.StatusConflict {
			return nil, fmt.Errorf("creating the CRD in %s: HTTP %d: %.300s", filepath.Base(f), code, reply)
		}
		if err := json.Unmarshal(reply, &answer); err != nil {
			return nil, fmt.Errorf("creating the CRD in %s: %v", filepath.Base(f), err)
		}
		name := answer.Metadata.Name
		if code == http.StatusConflict {
			name = answer.Details.Name
		}
		if name == "" {
			return nil, fmt.Errorf("creating the CRD in %s: the answer names no CRD", filepath.Base(f))
		}
		names = append(names, name)
	}
	return names, nil
}

// waitNamedEstablished polls each named CRD until all are Established.
func waitNamedEstablished(a *admin, names []string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		var pending []string
		for _, name := range names {
			code, body, err := a.do(http.MethodGet, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"+name, nil)
			if err != nil {
				return err
			}
			var crd crdStatus
			if code != http.StatusOK || json.Unmarshal(body, &crd) != nil || !crd.established() {
				pending = append(pending, name)
			}
		}
		if len(pending) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("CRDs not established after %s: %s", limit, strings.Join(pending, ", "))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// kyvernoWait waits until Kyverno's admission controller says it is ready (HEALTH_URL, served
// with the certificate CA_FILE signed) and has written its webhook configurations.
func kyvernoWait(args []string) error {
	if len(args) != 5 {
		return errors.New("usage: kyverno-wait DIR SERVER HEALTH_URL CA_FILE TIMEOUT_SECONDS")
	}
	healthURL, caFile := args[2], args[3]
	secs, err := strconv.Atoi(args[4])
	if err != nil {
		return err
	}
	a, err := newAdmin(args[0], args[1])
	if err != nil {
		return err
	}
	hc, _, err := trustingClient(caFile)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(time.Duration(secs) * time.Second)
	for {
		last := probeKyverno(a, hc, healthURL)
		if last == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kyverno not ready after %d s: %s", secs, last)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// probeKyverno returns "" once Kyverno is ready and its webhook configurations exist, or what
// is still missing.
func probeKyverno(a *admin, hc *http.Client, healthURL string) string {
	resp, err := hc.Get(healthURL)
	if err != nil {
		return "readiness: " + err.Error()
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Sprintf("readiness: HTTP %d", resp.StatusCode)
	}
	for _, name := range kyvernoWebhooks {
		code, _, err := a.do(http.MethodGet, "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/"+name, nil)
		if err != nil {
			return err.Error()
		}
		if code != http.StatusOK {
			return fmt.Sprintf("webhook configuration %s: HTTP %d", name, code)
		}
	}
	return ""
}
