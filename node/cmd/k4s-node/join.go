package main

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Joining nodes into a cluster, as a k3s agent joins its server with a token:
// with Kubernetes' own TLS bootstrapping, so the agent never holds the CA key.
//
// The operator's side (`pants run` with `-join`, k4stool identity.go) hands
//
//   - the server: ca.crt, ca.key and join-token (a bootstrap token,
//     <id>.<secret>) in /etc/k4s/identity. The server's k4s-node creates the
//     token's Secret and the RBAC bindings kubeadm creates for bootstrapping
//     (joinAddons), and approves the kubelet serving certificates nodes ask
//     for (approveServingCSRs);
//   - an agent: ca.crt (no key), join-token and server (the apiserver's URL).
//     Its kubelet authenticates with the token, asks for its client
//     certificate (approved by kube-controller-manager's csrapproving
//     controller) and its serving certificate (approved by the server's
//     k4s-node), and flanneld and kube-proxy then use the node's credentials
//     (/var/lib/kubelet/kubeconfig), bound to what they need for the group
//     system:nodes.

// The identity's files (joinTokenFile, serverFile, ...) are generated at the
// end of identity.go from k4stool's identity contract.
const (
	// bootstrapGroup is the group of the bootstrap token's user.
	bootstrapGroup = "system:bootstrappers:k4s"
	// nodeKubeconfig is what the kubelet writes once its client certificate is
	// issued; flanneld and kube-proxy on an agent use it too.
	nodeKubeconfig = "/var/lib/kubelet/kubeconfig"
	nodeClientCert = "/var/lib/kubelet/pki/kubelet-client-current.pem"
)

var tokenFormat = regexp.MustCompile(`^([a-z0-9]{6})\.([a-z0-9]{16})$`)

// join is the join material handed to the node: the token, and for an agent
// the server's URL and the cluster CA's certificate.
type join struct {
	tokenID, tokenSecret string
	server               string // "" on the server itself
	caPEM                []byte
}

func (j *join) token() string { return j.tokenID + "." + j.tokenSecret }

// loadJoin reads the join material from dir; nil when there is none (a node of
// its own, as before clusters).
func loadJoin(dir string) (*join, error) {
	tokenPath := filepath.Join(dir, joinTokenFile)
	data, err := os.ReadFile(tokenPath)
	if errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(filepath.Join(dir, serverFile)); serr == nil {
			return nil, &identityError{tokenPath, "is missing while `server` names a server to join"}
		}
		return nil, nil
	} else if err != nil {
		return nil, &identityError{tokenPath, err.Error()}
	}
	m := tokenFormat.FindStringSubmatch(strings.TrimSpace(string(data)))
	if m == nil {
		return nil, &identityError{tokenPath, "is not a bootstrap token <6 of [a-z0-9]>.<16 of [a-z0-9]>"}
	}
	j := &join{tokenID: m[1], tokenSecret: m[2]}
	server, err := os.ReadFile(filepath.Join(dir, serverFile))
	if errors.Is(err, fs.ErrNotExist) {
		return j, nil // the server side
	} else if err != nil {
		return nil, &identityError{filepath.Join(dir, serverFile), err.Error()}
	}
	j.server = strings.TrimSpace(string(server))
	if !strings.HasPrefix(j.server, "https://") {
		return nil, &identityError{filepath.Join(dir, serverFile), fmt.Sprintf("is %q, not an https:// URL of the server's apiserver", j.server)}
	}
	caPath := filepath.Join(dir, caCertFile)
	if j.caPEM, err = os.ReadFile(caPath); err != nil {
		return nil, &identityError{caPath, fmt.Sprintf("cannot be read (%v): an agent needs the cluster CA's certificate", err)}
	}
	if b, _ := pem.Decode(j.caPEM); b == nil || b.Type != "CERTIFICATE" {
		return nil, &identityError{caPath, "is not a PEM certificate"}
	}
	if _, err := os.Stat(filepath.Join(dir, caKeyFile)); err == nil {
		return nil, &identityError{filepath.Join(dir, caKeyFile), "is there on an agent: an agent gets the CA's certificate only"}
	}
	log.Printf("joining the cluster at %s with bootstrap token %s", j.server, j.tokenID)
	return j, nil
}

// agent tells whether this node joins another (it runs no control plane).
func (n *node) agent() bool { return n.join != nil && n.join.server != "" }

// configureAgent writes what an agent needs before its kubelet bootstraps:
// the CA certificate and the bootstrap kubeconfig.
func (n *node) configureAgent() error {
	n.pki = &pki{dir: n.dir("pki")}
	if err := os.MkdirAll(n.pki.dir, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(n.pki.path("ca.crt"), n.join.caPEM, 0o644); err != nil {
		return err
	}
	return writeKubeconfig(n.dir("bootstrap.kubeconfig"), n.pki.path("ca.crt"), n.join.server, "bootstrap",
		"token: "+n.join.token())
}

// joinAddons are the server's objects for joining nodes: the bootstrap
// token's Secret and the bindings kubeadm makes (CSR creation and automatic
// approval of node client certificates for bootstrappers, renewal for nodes),
// plus what flanneld and kube-proxy need when they run as their node.
func (n *node) joinAddons() []addon {
	if n.join == nil || n.agent() {
		return nil
	}
	type obj = map[string]any
	k4s := obj{"app.kubernetes.io/managed-by": "k4s-node"}
	binding := func(name, role, kind, subject string) addon {
		return addon{"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", obj{
			"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
			"metadata": obj{"name": name, "labels": k4s},
			"roleRef":  obj{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
			"subjects": []obj{{"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": subject}},
		}}
	}
	out := []addon{
		{"/api/v1/namespaces/kube-system/secrets", obj{
			"apiVersion": "v1", "kind": "Secret", "type": "bootstrap.kubernetes.io/token",
			"metadata":   obj{"name": "bootstrap-token-" + n.join.tokenID, "namespace": "kube-system", "labels": k4s},
			"stringData": tokenSecretData(n.join, n.tokenTTL, time.Now()),
		}},
		binding("k4s:node-bootstrapper", "system:node-bootstrapper", "Group", bootstrapGroup),
		binding("k4s:node-autoapprove-bootstrap", "system:certificates.k8s.io:certificatesigningrequests:nodeclient", "Group", bootstrapGroup),
		binding("k4s:node-autoapprove-renewal", "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient", "Group", "system:nodes"),
		binding("k4s:node-proxier", "system:node-proxier", "Group", "system:nodes"),
	}
	if n.runs("flanneld") {
		out = append(out, binding("k4s:flannel-nodes", flannelUser, "Group", "system:nodes"))
	}
	if n.runs("kube-router") {
		out = append(out, binding("k4s:kube-router-nodes", kubeRouterUser, "Group", "system:nodes"))
	}
	if n.runs(netpolComponent) {
		out = append(out, binding("k4s:kube-network-policies-nodes", netpolUser, "Group", "system:nodes"))
	}
	return out
}

// tokenSecretData is the bootstrap token Secret's data: the token, what it
// may do, and, unless ttl is 0, when it expires (the apiserver's token
// authenticator refuses it afterwards, and kube-controller-manager's
// tokencleaner deletes it), as `kubeadm token create --ttl` writes it.
func tokenSecretData(j *join, ttl time.Duration, now time.Time) map[string]any {
	data := map[string]any{
		"token-id": j.tokenID, "token-secret": j.tokenSecret,
		"usage-bootstrap-authentication": "true", "auth-extra-groups": bootstrapGroup,
		"description": "k4s join token (k4stool identity.go)",
	}
	if ttl > 0 {
		data["expiration"] = now.Add(ttl).UTC().Format(time.RFC3339)
	}
	return data
}

// approveServingCSRs approves, every few seconds, the kubelet serving
// certificate requests of joined nodes (signer kubernetes.io/kubelet-serving,
// which kube-controller-manager never approves itself): only a node's own
// request (CN system:node:<name> = the requesting user, O system:nodes), with
// DNS names and IP addresses only, as kubelet-csr-approver checks.
func (n *node) approveServingCSRs() {
	refused := map[string]bool{} // reported once each
	for {
		var list struct {
			Items []struct {
				Metadata struct{ Name string } `json:"metadata"`
				Spec     struct {
					Request    []byte   `json:"request"`
					SignerName string   `json:"signerName"`
					Username   string   `json:"username"`
					Usages     []string `json:"usages"`
				} `json:"spec"`
				Status struct {
					Conditions []struct{ Type string } `json:"conditions"`
				} `json:"status"`
			} `json:"items"`
		}
		if err := n.call("GET", "/apis/certificates.k8s.io/v1/certificatesigningrequests", nil, &list); err != nil {
			time.Sleep(5 * time.Second)
			continue
		}
		for _, c := range list.Items {
			if c.Spec.SignerName != "kubernetes.io/kubelet-serving" || len(c.Status.Conditions) > 0 {
				continue
			}
			problem := "the requester is not a node"
			if name, ok := strings.CutPrefix(c.Spec.Username, "system:node:"); ok {
				var node struct {
					Status struct {
						Addresses []nodeAddress `json:"addresses"`
					} `json:"status"`
				}
				if err := n.call("GET", "/api/v1/nodes/"+name, nil, &node); err != nil {
					problem = "no node " + name + ": " + err.Error()
				} else {
					problem = servingCSRProblem(c.Spec.Request, c.Spec.Username, node.Status.Addresses)
				}
			}
			if problem != "" {
				if refused[c.Metadata.Name] {
					continue
				}
				refused[c.Metadata.Name] = true
				log.Printf("kubelet serving CSR %s of %s not approved: %s", c.Metadata.Name, c.Spec.Username, problem)
				continue
			}
			body := map[string]any{
				"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
				"metadata": map[string]any{"name": c.Metadata.Name},
				"spec": map[string]any{"request": c.Spec.Request, "signerName": c.Spec.SignerName,
					"usages": c.Spec.Usages},
				"status": map[string]any{"conditions": []map[string]any{{
					"type": "Approved", "status": "True", "reason": "K4sNodeServingCert",
					"message": "the node's own serving certificate (k4s-node)",
				}}},
			}
			err := n.call("PUT", "/apis/certificates.k8s.io/v1/certificatesigningrequests/"+c.Metadata.Name+"/approval", body, nil)
			if err != nil {
				log.Printf("approving kubelet serving CSR %s: %v", c.Metadata.Name, err)
			} else {
				log.Printf("approved the kubelet serving certificate of %s", c.Spec.Username)
			}
		}
		time.Sleep(5 * time.Second)
	}
}

// nodeAddress is one of a Node's status.addresses (the kubelet reports them).
type nodeAddress struct {
	Type    string `json:"type"`
	Address string `json:"address"`
}

// servingCSRProblem says why a kubelet-serving CSR is not a node's own
// request for a serving certificate, or "" if it is: its DNS names and IP
// addresses must be the node's own (its status.addresses), as
// kubelet-csr-approver requires.
func servingCSRProblem(request []byte, username string, addrs []nodeAddress) string {
	b, _ := pem.Decode(request)
	if b == nil || b.Type != "CERTIFICATE REQUEST" {
		return "not a PEM certificate request"
	}
	csr, err := x509.ParseCertificateRequest(b.Bytes)
	if err != nil {
		return err.Error()
	}
	if err := csr.CheckSignature(); err != nil {
		return err.Error()
	}
	if !strings.HasPrefix(username, "system:node:") || csr.Subject.CommonName != username {
		return fmt.Sprintf("CN %q is not the requesting node %q", csr.Subject.CommonName, username)
	}
	if len(csr.Subject.Organization) != 1 || csr.Subject.Organization[0] != "system:nodes" {
		return fmt.Sprintf("O %v is not [system:nodes]", csr.Subject.Organization)
	}
	if len(csr.EmailAddresses) > 0 || len(csr.URIs) > 0 {
		return "asks for e-mail or URI names"
	}
	if len(csr.DNSNames) == 0 && len(csr.IPAddresses) == 0 {
		return "names no DNS name or IP address"
	}
	names, ips := map[string]bool{}, map[string]bool{}
	for _, a := range addrs {
		switch a.Type {
		case "Hostname", "InternalDNS", "ExternalDNS":
			names[a.Address] = true
		case "InternalIP", "ExternalIP":
			if ip := net.ParseIP(a.Address); ip != nil {
				ips[ip.String()] = true
			}
		}
	}
	for _, d := range csr.DNSNames {
		if !names[d] {
			return fmt.Sprintf("DNS name %q is not one of the node's addresses", d)
		}
	}
	for _, ip := range csr.IPAddresses {
		if !ips[ip.String()] {
			return fmt.Sprintf("IP address %s is not one of the node's addresses", ip)
		}
	}
	return ""
}

// nodeCredentialsReady reports whether an agent's kubelet has its client
// certificate (issued after bootstrapping) and kubeconfig yet.
func nodeCredentialsReady() error {
	if _, err := os.Stat(nodeClientCert); err != nil {
		return fmt.Errorf("the kubelet has no client certificate yet (%s): is the server at the join URL up, and the token its own?", nodeClientCert)
	}
	if _, err := os.Stat(nodeKubeconfig); err != nil {
		return err
	}
	return nil
}
