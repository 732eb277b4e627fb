package main

// The cluster side of running a real Gatekeeper beside a test-bed apiserver: its namespace,
// its identity's RBAC, its CRDs (the YAML files shipped in the Gatekeeper module, posted as
// they are: the apiserver reads YAML bodies itself), and, once the process serves, the
// ValidatingWebhookConfiguration that sends admission to it by URL.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// GatekeeperUser is the token user Gatekeeper's kubeconfig authenticates as.
const GatekeeperUser = "gatekeeper"

// GatekeeperNamespace is where Gatekeeper keeps its status objects (its default).
const GatekeeperNamespace = "gatekeeper-system"

// GatekeeperWebhook is the name of the ValidatingWebhookConfiguration (Gatekeeper's default,
// which it is told with --validating-webhook-configuration-name and reads back).
const GatekeeperWebhook = "gatekeeper-validating-webhook-configuration"

var gatekeeperSystem = map[string]any{"gatekeeper.sh/system": "yes", "app.kubernetes.io/part-of": "palisade-testbed"}

// gatekeeperRules is what the Gatekeeper controller manager needs as the test bed runs it
// (validating webhook, audit, status and generate operations; no mutation, no certificate
// rotation). It follows upstream's gatekeeper-manager-role, without the rules for what is
// switched off here: writing webhook configurations (only certificate rotation does) and
// the Secrets in its namespace (the rotator's certificate store).
var gatekeeperRules = []rule{
	// Audit and the sync cache list every kind; the webhook looks up namespaces.
	{[]string{"*"}, []string{"*"}, read},
	{[]string{""}, []string{"events"}, []string{"create", "patch"}},
	// One CRD per ConstraintTemplate, created and removed by Gatekeeper itself.
	{[]string{"apiextensions.k8s.io"}, []string{"customresourcedefinitions"}, manage},
	{[]string{"templates.gatekeeper.sh"}, []string{"constrainttemplates"}, manage},
	{[]string{"templates.gatekeeper.sh"}, []string{"constrainttemplates/status"}, []string{"get", "patch", "update"}},
	{[]string{"templates.gatekeeper.sh"}, []string{"constrainttemplates/finalizers"}, []string{"update"}},
	// Constraints (their status holds audit results) and the per-process status objects.
	{[]string{"constraints.gatekeeper.sh", "status.gatekeeper.sh", "config.gatekeeper.sh",
		"expansion.gatekeeper.sh", "mutations.gatekeeper.sh", "connection.gatekeeper.sh"}, []string{"*"}, manage},
	{[]string{"externaldata.gatekeeper.sh"}, []string{"providers", "providers/status"}, manage},
	// A template may ask for a ValidatingAdmissionPolicy to be generated from its CEL.
	{[]string{"admissionregistration.k8s.io"}, []string{"validatingadmissionpolicies", "validatingadmissionpolicybindings"}, manage},
}

// gatekeeperInstall prepares a cluster for Gatekeeper: namespace, RBAC, CRDs. It returns once
// every CRD is established and the RBAC authorizer honours the binding.
func gatekeeperInstall(args []string) error {
	if len(args) != 3 {
		return errors.New("usage: gatekeeper-install DIR SERVER CRD_DIR")
	}
	a, err := newAdmin(args[0], args[1])
	if err != nil {
		return err
	}
	if err := a.apply("/api/v1/namespaces", GatekeeperNamespace, map[string]any{
		"apiVersion": "v1", "kind": "Namespace",
		"metadata": map[string]any{"name": GatekeeperNamespace, "labels": map[string]any{
			"admission.gatekeeper.sh/ignore": "no-self-managing", "app.kubernetes.io/part-of": "palisade-testbed",
		}},
	}); err != nil {
		return err
	}
	if err := a.grantClusterRole(GatekeeperUser, gatekeeperSystem, gatekeeperRules); err != nil {
		return err
	}

	if err := installCRDs(a, args[2]); err != nil {
		return err
	}
	return waitAllowed(a, GatekeeperUser, map[string]any{
		"group": "templates.gatekeeper.sh", "resource": "constrainttemplates", "verb": "watch",
	}, 30*time.Second)
}

// gatekeeperRegister waits until the Gatekeeper process is ready (its /readyz, then an
// AdmissionReview posted straight to its webhook is answered), then registers the webhook
// with the apiserver by URL, trusting CA_FILE.
func gatekeeperRegister(args []string) error {
	if len(args) != 6 {
		return errors.New("usage: gatekeeper-register DIR SERVER WEBHOOK_URL CA_FILE HEALTH_URL TIMEOUT_SECONDS")
	}
	hookURL, caFile, healthURL := args[2], args[3], args[4]
	secs, err := strconv.Atoi(args[5])
	if err != nil {
		return err
	}
	a, err := newAdmin(args[0], args[1])
	if err != nil {
		return err
	}
	hc, caPEM, err := trustingClient(caFile)
	if err != nil {
		return err
	}
	if err := untilReady("gatekeeper", secs, func() string { return probeGatekeeper(hc, healthURL, hookURL) }); err != nil {
		return err
	}

	hook := map[string]any{
		"name":                    "validation.gatekeeper.sh",
		"admissionReviewVersions": []string{"v1", "v1beta1"},
		"clientConfig": map[string]any{
			"url":      hookURL,
			"caBundle": base64.StdEncoding.EncodeToString(caPEM),
		},
		// Upstream's defaults: a Gatekeeper that does not answer in 3 s does not block writes.
		"failurePolicy": "Ignore",
		"matchPolicy":   "Exact",
		"namespaceSelector": map[string]any{"matchExpressions": []any{
			map[string]any{"key": "admission.gatekeeper.sh/ignore", "operator": "DoesNotExist"},
			map[string]any{"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": []string{GatekeeperNamespace}},
		}},
		"rules": []any{map[string]any{
			"apiGroups": []string{"*"}, "apiVersions": []string{"*"},
			"operations": []string{"CREATE", "UPDATE"}, "resources": []string{"*"}, "scope": "*",
		}},
		"sideEffects":    "None",
		"timeoutSeconds": 3,
	}
	return a.apply("/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations", GatekeeperWebhook, map[string]any{
		"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
		"metadata": map[string]any{"name": GatekeeperWebhook, "labels": gatekeeperSystem},
		"webhooks": []any{hook},
	})
}

// probeGatekeeper returns "" once Gatekeeper says it is ready and its webhook admits a
// harmless ConfigMap, or what is still missing.
func probeGatekeeper(hc *http.Client, healthURL, hookURL string) string {
	if last := probeHealth(hc, healthURL, "readyz"); last != "" {
		return last
	}
	review := map[string]any{
		"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
		"request": map[string]any{
			"uid":       "palisade-testbed-probe",
			"kind":      map[string]any{"group": "", "version": "v1", "kind": "ConfigMap"},
			"resource":  map[string]any{"group": "", "version": "v1", "resource": "configmaps"},
			"name":      "probe",
			"namespace": "default",
			"operation": "CREATE",
			"userInfo":  map[string]any{"username": "testbed-admin"},
			"object": map[string]any{
				"apiVersion": "v1", "kind": "ConfigMap",
				"metadata": map[string]any{"name": "probe", "namespace": "default"},
			},
		},
	}
	b, err := json.Marshal(review)
	if err != nil {
		return err.Error()
	}
	resp, err := hc.Post(hookURL, "application/json", bytes.NewReader(b))
	if err != nil {
		return "webhook: " + err.Error()
	}
	defer resp.Body.Close()
	var res struct {
		Response struct {
			UID     string `json:"uid"`
			Allowed bool   `json:"allowed"`
		} `json:"response"`
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Sprintf("webhook: HTTP %d", resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		return "webhook: " + err.Error()
	}
	if res.Response.UID != "palisade-testbed-probe" || !res.Response.Allowed {
		return fmt.Sprintf("webhook: unexpected answer %+v", res.Response)
	}
	return ""
}
