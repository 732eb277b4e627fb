package main

// The cluster side of running a real Kyverno beside a test-bed apiserver: its namespace, its
// identity's RBAC, the Secrets holding the serving certificate the test bed issued for it, its
// configuration, and its CRDs (the YAML files shipped in the Kyverno module, posted as they
// are). Unlike Gatekeeper, Kyverno registers its own webhooks (by URL, because it is told
// --serverIP), so `kyverno-wait` only waits until it has.

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
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
	if err := installCRDs(a, args[2]); err != nil {
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
	return untilReady("kyverno", secs, func() string { return probeKyverno(a, hc, healthURL) })
}

// probeKyverno returns "" once Kyverno is ready and its webhook configurations exist, or what
// is still missing.
func probeKyverno(a *admin, hc *http.Client, healthURL string) string {
	if last := probeHealth(hc, healthURL, "readiness"); last != "" {
		return last
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
