// Command testbed-helper does the parts of e2e/clusters that are awkward in bash:
// free ports, certificates and keys, kubeconfig files, readiness polling and the
// RBAC objects for Palisade. It uses the standard library only.
//
//	testbed-helper ports COUNT
//	testbed-helper pki DIR NAME
//	testbed-helper kubeconfig OUT NAME SERVER [ca=FILE] [cert=FILE key=FILE] [token=FILE]
//	testbed-helper wait DIR SERVER TIMEOUT_SECONDS
//	testbed-helper bootstrap DIR SERVER
//	testbed-helper gatekeeper-install DIR SERVER CRD_DIR
//	testbed-helper gatekeeper-register DIR SERVER WEBHOOK_URL CA_FILE HEALTH_URL TIMEOUT_SECONDS
//	testbed-helper kyverno-install DIR SERVER CRD_DIR KYVERNO_PKI_DIR
//	testbed-helper kyverno-wait DIR SERVER HEALTH_URL CA_FILE TIMEOUT_SECONDS
package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// PalisadeUser is the token user Palisade's least-privilege kubeconfig authenticates as.
const PalisadeUser = "palisade"

func main() {
	if len(os.Args) < 2 {
		fail(errors.New("usage: testbed-helper ports|pki|kubeconfig|wait|bootstrap|gatekeeper-install|gatekeeper-register|kyverno-install|kyverno-wait ..."))
	}
	args := os.Args[2:]
	var err error
	switch os.Args[1] {
	case "ports":
		err = ports(args)
	case "pki":
		err = pki(args)
	case "kubeconfig":
		err = kubeconfig(args)
	case "wait":
		err = wait(args)
	case "bootstrap":
		err = bootstrap(args)
	case "gatekeeper-install":
		err = gatekeeperInstall(args)
	case "gatekeeper-register":
		err = gatekeeperRegister(args)
	case "kyverno-install":
		err = kyvernoInstall(args)
	case "kyverno-wait":
		err = kyvernoWait(args)
	default:
		err = fmt.Errorf("unknown subcommand %q", os.Args[1])
	}
	if err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintf(os.Stderr, "testbed-helper: %v\n", err)
	os.Exit(1)
}

// ports prints COUNT distinct TCP ports that were free on 127.0.0.1 a moment ago.
// They are drawn at random from below the kernel's ephemeral range, so outgoing
// connections (an apiserver dialing etcd, say) cannot grab one before its server binds
// it; each is checked by binding it, and all are held until the end so none repeats.
func ports(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: ports COUNT")
	}
	n, err := strconv.Atoi(args[0])
	if err != nil || n < 1 {
		return fmt.Errorf("bad count %q", args[0])
	}
	lo, hi := 10000, ephemeralLow()-1
	out := make([]string, 0, n)
	for tries := 0; len(out) < n; tries++ {
		var l net.Listener
		if hi-lo >= 1000 && tries < 50*n {
			p, err := rand.Int(rand.Reader, big.NewInt(int64(hi-lo+1)))
			if err != nil {
				return err
			}
			l, err = net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", lo+int(p.Int64())))
			if err != nil {
				continue // taken; draw again
			}
		} else {
			// No room below the ephemeral range: let the kernel choose.
			if l, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
				return err
			}
		}
		defer l.Close()
		out = append(out, strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
	}
	fmt.Println(strings.Join(out, " "))
	return nil
}

// ephemeralLow is the first port of net.ipv4.ip_local_port_range (32768 if unknown).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 32768
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 32768
	}
	v, err := strconv.Atoi(f[0])
	if err != nil {
		return 32768
	}
	return v
}

// ---------------------------------------------------------------- certificates

func newKey() (*ecdsa.PrivateKey, error) {
	return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

func writePEM(path, kind string, der []byte, mode os.FileMode) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), mode)
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	return writePEM(path, "PRIVATE KEY", der, 0o600)
}

func randomToken() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

type issued struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func issue(dir, name string, tmpl *x509.Certificate, ca *issued) (*issued, error) {
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl.SerialNumber = sn
	tmpl.NotBefore = now.Add(-time.Hour)
	tmpl.NotAfter = now.Add(365 * 24 * time.Hour)
	parent, signer := tmpl, key
	if ca != nil {
		parent, signer = ca.cert, ca.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, signer)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	if err := writePEM(filepath.Join(dir, name+".crt"), "CERTIFICATE", der, 0o644); err != nil {
		return nil, err
	}
	if err := writeKey(filepath.Join(dir, name+".key"), key); err != nil {
		return nil, err
	}
	return &issued{cert, key}, nil
}

// pki writes a fresh CA, the apiserver serving certificate, an admin client
// certificate (group system:masters), the service-account key pair and the
// static token file holding the tokens of Palisade, Gatekeeper and Kyverno.
func pki(args []string) error {
	if len(args) != 2 {
		return errors.New("usage: pki DIR NAME")
	}
	dir, name := args[0], args[1]
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	ca, err := issue(dir, "ca", &x509.Certificate{
		Subject:               pkix.Name{CommonName: "palisade-testbed-" + name + "-ca"},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}, nil)
	if err != nil {
		return err
	}
	if _, err := issue(dir, "apiserver", &x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
			"kubernetes.default.svc.cluster.local"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback, net.IPv4(10, 0, 0, 1)},
	}, ca); err != nil {
		return err
	}
	if _, err := issue(dir, "admin", &x509.Certificate{
		Subject:     pkix.Name{CommonName: "testbed-admin", Organization: []string{"system:masters"}},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ca); err != nil {
		return err
	}
	sa, err := newKey()
	if err != nil {
		return err
	}
	if err := writeKey(filepath.Join(dir, "sa.key"), sa); err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&sa.PublicKey)
	if err != nil {
		return err
	}
	if err := writePEM(filepath.Join(dir, "sa.pub"), "PUBLIC KEY", pub, 0o644); err != nil {
		return err
	}
	for _, f := range []string{"palisade.token", "audit.token", "gatekeeper.token", "kyverno.token"} {
		tok, err := randomToken()
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, f), []byte(tok), 0o600); err != nil {
			return err
		}
	}
	tok, err := os.ReadFile(filepath.Join(dir, "palisade.token"))
	if err != nil {
		return err
	}
	gk, err := os.ReadFile(filepath.Join(dir, "gatekeeper.token"))
	if err != nil {
		return err
	}
	ky, err := os.ReadFile(filepath.Join(dir, "kyverno.token"))
	if err != nil {
		return err
	}
	// token,user,uid[,"group,..."]; no user gets a group beyond system:authenticated.
	// The gatekeeper and kyverno users have no rights until `gatekeeper-install` or
	// `kyverno-install` binds their ClusterRoles.
	lines := fmt.Sprintf("%s,%s,%s-uid\n%s,%s,%s-uid\n%s,%s,%s-uid\n",
		tok, PalisadeUser, PalisadeUser, gk, GatekeeperUser, GatekeeperUser, ky, KyvernoUser, KyvernoUser)
	return os.WriteFile(filepath.Join(dir, "tokens.csv"), []byte(lines), 0o600)
}

// ---------------------------------------------------------------- kubeconfig

func b64file(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b), nil
}

// kubeconfig writes a kubeconfig (as JSON, which every YAML reader accepts) with
// the certificate data embedded, so the file stands on its own.
func kubeconfig(args []string) error {
	if len(args) < 3 {
		return errors.New("usage: kubeconfig OUT NAME SERVER [ca=FILE] [cert=FILE key=FILE] [token=FILE]")
	}
	out, name, server := args[0], args[1], args[2]
	cluster := map[string]any{"server": server}
	user := map[string]any{}
	for _, kv := range args[3:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("bad argument %q", kv)
		}
		switch k {
		case "ca":
			d, err := b64file(v)
			if err != nil {
				return err
			}
			cluster["certificate-authority-data"] = d
		case "cert":
			d, err := b64file(v)
			if err != nil {
				return err
			}
			user["client-certificate-data"] = d
		case "key":
			d, err := b64file(v)
			if err != nil {
				return err
			}
			user["client-key-data"] = d
		case "token":
			b, err := os.ReadFile(v)
			if err != nil {
				return err
			}
			user["token"] = strings.TrimSpace(string(b))
		default:
			return fmt.Errorf("bad argument %q", kv)
		}
	}
	doc := map[string]any{
		"apiVersion":      "v1",
		"kind":            "Config",
		"clusters":        []any{map[string]any{"name": name, "cluster": cluster}},
		"users":           []any{map[string]any{"name": name, "user": user}},
		"contexts":        []any{map[string]any{"name": name, "context": map[string]any{"cluster": name, "user": name}}},
		"current-context": name,
		"preferences":     map[string]any{},
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(out, append(b, '\n'), 0o600)
}

// ---------------------------------------------------------------- admin client

type admin struct {
	server string
	http   *http.Client
}

func newAdmin(dir, server string) (*admin, error) {
	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, errors.New("no CA certificate in ca.crt")
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "admin.crt"), filepath.Join(dir, "admin.key"))
	if err != nil {
		return nil, err
	}
	return &admin{server: strings.TrimRight(server, "/"), http: &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: pool, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12,
		}},
	}}, nil
}

func (a *admin) do(method, path string, body any) (int, []byte, error) {
	if body == nil {
		return a.send(method, path, "", nil)
	}
	b, err := json.Marshal(body)
	if err != nil {
		return 0, nil, err
	}
	return a.send(method, path, "application/json", b)
}

// send makes one request with a body already encoded as contentType (none when empty).
func (a *admin) send(method, path, contentType string, body []byte) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, a.server+path, rd)
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Accept", "application/json")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// wait polls /readyz until the apiserver answers 200, or gives up after TIMEOUT seconds.
func wait(args []string) error {
	if len(args) != 3 {
		return errors.New("usage: wait DIR SERVER TIMEOUT_SECONDS")
	}
	secs, err := strconv.Atoi(args[2])
	if err != nil {
		return err
	}
	a, err := newAdmin(args[0], args[1])
	if err != nil {
		return err
	}
	deadline := time.Now().Add(time.Duration(secs) * time.Second)
	last := "no answer yet"
	for time.Now().Before(deadline) {
		code, body, err := a.do(http.MethodGet, "/readyz?verbose", nil)
		switch {
		case err != nil:
			last = err.Error()
		case code == http.StatusOK:
			return nil
		default:
			last = fmt.Sprintf("HTTP %d\n%s", code, body)
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %d s; last /readyz answer: %s", args[1], secs, last)
}

// ---------------------------------------------------------------- RBAC

type rule struct {
	APIGroups []string `json:"apiGroups"`
	Resources []string `json:"resources"`
	Verbs     []string `json:"verbs"`
}

var (
	read   = []string{"get", "list", "watch"}
	manage = []string{"get", "list", "watch", "create", "update", "patch", "delete"}
)

// palisadeRules is exactly what Palisade needs in a cluster, nothing more.
var palisadeRules = []rule{
	// Push policies: ValidatingAdmissionPolicies and their bindings (status is read-only).
	{[]string{"admissionregistration.k8s.io"}, []string{"validatingadmissionpolicies", "validatingadmissionpolicybindings"}, manage},
	{[]string{"admissionregistration.k8s.io"}, []string{"validatingadmissionpolicies/status"}, []string{"get"}},
	// Pod Security Admission: read namespaces, patch their labels.
	{[]string{""}, []string{"namespaces"}, []string{"get", "list", "watch", "patch"}},
	// Scan and impact preview: read workloads.
	{[]string{""}, []string{"pods", "replicationcontrollers"}, read},
	{[]string{"apps"}, []string{"deployments", "replicasets", "statefulsets", "daemonsets"}, read},
	{[]string{"batch"}, []string{"jobs", "cronjobs"}, read},
	// The inventory (impact previews): read what policies can match besides workloads.
	{[]string{""}, []string{"services", "serviceaccounts"}, read},
	{[]string{"networking.k8s.io"}, []string{"ingresses", "networkpolicies"}, read},
	{[]string{"rbac.authorization.k8s.io"}, []string{"roles", "clusterroles", "rolebindings", "clusterrolebindings"}, read},
	// Violations reported by other engines.
	{[]string{"wgpolicyk8s.io"}, []string{"policyreports", "clusterpolicyreports"}, read},
	// Push Gatekeeper policies: templates and the constraints of the kinds they define (read
	// also for the violations their audit reports in status).
	{[]string{"templates.gatekeeper.sh"}, []string{"constrainttemplates"}, manage},
	{[]string{"constraints.gatekeeper.sh"}, []string{"*"}, manage},
	// Push Kyverno policies (both kinds of each family) and the PolicyExceptions that carry
	// Palisade's exclusions.
	{[]string{"kyverno.io"}, []string{"clusterpolicies", "policies", "policyexceptions"}, manage},
	{[]string{"policies.kyverno.io"}, []string{"validatingpolicies", "namespacedvalidatingpolicies", "policyexceptions"}, manage},
}

func (a *admin) apply(collection, name string, obj map[string]any) error {
	code, body, err := a.do(http.MethodPost, collection, obj)
	if err != nil {
		return err
	}
	if code == http.StatusConflict {
		code, body, err = a.do(http.MethodPut, collection+"/"+name, obj)
		if err != nil {
			return err
		}
	}
	if code != http.StatusCreated && code != http.StatusOK {
		return fmt.Errorf("writing %s/%s: HTTP %d: %s", collection, name, code, body)
	}
	return nil
}

// bootstrap creates the ClusterRole and ClusterRoleBinding for Palisade's token
// user and waits until the authorizer honours them.
func bootstrap(args []string) error {
	if len(args) != 2 {
		return errors.New("usage: bootstrap DIR SERVER")
	}
	a, err := newAdmin(args[0], args[1])
	if err != nil {
		return err
	}
	labels := map[string]any{"app.kubernetes.io/part-of": "palisade-testbed"}
	if err := a.grantClusterRole(PalisadeUser, labels, palisadeRules); err != nil {
		return err
	}
	// The RBAC authorizer reads through an informer; wait until it sees the binding.
	return waitAllowed(a, PalisadeUser, map[string]any{
		"group": "admissionregistration.k8s.io", "resource": "validatingadmissionpolicybindings", "verb": "create",
	}, 30*time.Second)
}

// grantClusterRole gives user the rules cluster-wide: a ClusterRole and a ClusterRoleBinding,
// both named after the user.
func (a *admin) grantClusterRole(user string, labels map[string]any, rules any) error {
	const rbac = "/apis/rbac.authorization.k8s.io/v1"
	if err := a.apply(rbac+"/clusterroles", user, map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
		"metadata": map[string]any{"name": user, "labels": labels},
		"rules":    rules,
	}); err != nil {
		return err
	}
	return a.apply(rbac+"/clusterrolebindings", user, map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
		"metadata": map[string]any{"name": user, "labels": labels},
		"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": user},
		"subjects": []any{map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}},
	})
}

// waitAllowed waits until a SubjectAccessReview says user may do what attrs describe.
func waitAllowed(a *admin, user string, attrs map[string]any, limit time.Duration) error {
	review := map[string]any{
		"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
		"spec": map[string]any{"user": user, "groups": []string{"system:authenticated"}, "resourceAttributes": attrs},
	}
	deadline := time.Now().Add(limit)
	for {
		code, body, err := a.do(http.MethodPost, "/apis/authorization.k8s.io/v1/subjectaccessreviews", review)
		if err != nil {
			return err
		}
		var res struct {
			Status struct {
				Allowed bool `json:"allowed"`
			} `json:"status"`
		}
		if code == http.StatusCreated && json.Unmarshal(body, &res) == nil && res.Status.Allowed {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("RBAC for %s not effective after %s: HTTP %d: %s", user, limit, code, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// crdStatus is what the waits read of a CustomResourceDefinition: its conditions.
type crdStatus struct {
	Status struct {
		Conditions []struct {
			Type   string `json:"type"`
			Status string `json:"status"`
		} `json:"conditions"`
	} `json:"status"`
}

// established says whether the apiserver serves the CRD's resources yet.
func (c crdStatus) established() bool {
	for _, cond := range c.Status.Conditions {
		if cond.Type == "Established" && cond.Status == "True" {
			return true
		}
	}
	return false
}

// installCRDs creates every CRD in dir (as postCRDs) and waits until all are Established.
func installCRDs(a *admin, dir string) error {
	names, err := postCRDs(a, dir)
	if err != nil {
		return err
	}
	return waitNamedEstablished(a, names, 60*time.Second)
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

// untilReady asks probe every 250 ms until it answers "" (what it probes, named what, is
// ready), or fails after secs seconds with its last answer.
func untilReady(what string, secs int, probe func() string) error {
	deadline := time.Now().Add(time.Duration(secs) * time.Second)
	for {
		last := probe()
		if last == "" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %d s: %s", what, secs, last)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// probeHealth returns "" once healthURL answers 200, or what it answered instead, after name.
func probeHealth(hc *http.Client, healthURL, name string) string {
	resp, err := hc.Get(healthURL)
	if err != nil {
		return name + ": " + err.Error()
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Sprintf("%s: HTTP %d", name, resp.StatusCode)
	}
	return ""
}

// trustingClient is an HTTPS client that trusts only the CA certificate in caFile; the PEM of
// that certificate comes back too.
func trustingClient(caFile string) (*http.Client, []byte, error) {
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return nil, nil, fmt.Errorf("no CA certificate in %s", caFile)
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
	}}, caPEM, nil
}
