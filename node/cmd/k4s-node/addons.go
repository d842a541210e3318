package main

import (
	"errors"
	"fmt"
	"log"
	"net/http"
	"os"
	"strings"
)

// Cluster DNS: CoreDNS from the bb, run by k4s-node on the host network (the
// node needs no image or pod for it), with its `kubernetes` plugin reading the
// API as its own user. Pods reach it at the kubelet's clusterDNS address,
// 10.43.0.10: kube-proxy sends the kube-dns Service (that address) to the
// EndpointSlice below (this node's address, port 53); without kube-proxy the
// address is also on `lo`, where CoreDNS listens too.

// corednsUser is CoreDNS's client certificate's name, bound to the
// k4s:coredns ClusterRole below.
const corednsUser = "k4s:coredns"

func (n *node) corefile() string {
	// Names outside the cluster go to the node's resolvers, if DHCP (or the image)
	// gave it any; CoreDNS refuses to start with a forward to nowhere.
	forward := "forward . /etc/resolv.conf"
	if !hasNameserver("/etc/resolv.conf") {
		log.Printf("no nameserver in /etc/resolv.conf: cluster DNS answers only for cluster.local")
		forward = "# no upstream resolver (no nameserver in /etc/resolv.conf at boot)"
	}
	return fmt.Sprintf(`.:53 {
    bind %s %s
    errors
    health 127.0.0.1:8080
    ready 127.0.0.1:8181
    acl {
        allow net %s 127.0.0.0/8
        block
    }
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig %s k4s
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
    %s
    cache 30
    loop
    reload
    loadbalance
}
`, clusterDNS, n.ip, strings.Join(n.dnsClients(), " "), n.dir("coredns.kubeconfig"), forward)
}

// dnsClients are the networks CoreDNS answers: pods, this node, and the other
// nodes (whose pods' queries arrive masqueraded as their node).
func (n *node) dnsClients() []string {
	out := []string{clusterCIDR, n.ip.String() + "/32"}
	if n.lan != nil {
		out = append(out, n.lan.network().String())
	}
	return out
}

func hasNameserver(path string) bool {
	data, _ := os.ReadFile(path)
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "nameserver" {
			return true
		}
	}
	return false
}

// addons are the API objects the node's components need, applied once the
// apiserver is ready (as k3s applies its manifests): create, or leave what
// is there.
// addon is an API object to create at the path (a collection) once.
type addon struct {
	path string
	obj  map[string]any
}

func (n *node) addons() []addon {
	type obj = map[string]any
	meta := func(name, ns string, labels obj) obj {
		m := obj{"name": name, "labels": labels}
		if ns != "" {
			m["namespace"] = ns
		}
		return m
	}
	k4s := obj{"app.kubernetes.io/managed-by": "k4s-node"}
	dnsLabels := obj{"k8s-app": "kube-dns", "kubernetes.io/name": "CoreDNS", "app.kubernetes.io/managed-by": "k4s-node"}
	ports := []obj{{"name": "dns", "port": 53, "protocol": "UDP"}, {"name": "dns-tcp", "port": 53, "protocol": "TCP"}}
	// userRole is a ClusterRole with these rules, bound to the user of that name
	// (a component's client certificate).
	userRole := func(user string, rules ...obj) []addon {
		return []addon{
			{"/apis/rbac.authorization.k8s.io/v1/clusterroles", obj{
				"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": meta(user, "", k4s),
				"rules": rules,
			}},
			{"/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", obj{
				"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": meta(user, "", k4s),
				"roleRef":  obj{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": user},
				"subjects": []obj{{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}},
			}},
		}
	}
	rule := func(group string, resources []string, verbs ...string) obj {
		return obj{"apiGroups": []string{group}, "resources": resources, "verbs": verbs}
	}
	// Joining nodes (join.go), then the pod network's role: what flannel's own
	// manifest (kube-flannel.yml) or kube-router's
	// (daemonset/generic-kuberouter.yaml) grants it, for its user.
	out := n.joinAddons()
	if n.runs("flanneld") {
		out = append(out, userRole(flannelUser,
			rule("", []string{"pods"}, "get"),
			rule("", []string{"nodes"}, "get", "list", "watch"),
			rule("", []string{"nodes/status"}, "patch"),
		)...)
	}
	if n.runs("kube-router") {
		out = append(out, userRole(kubeRouterUser,
			rule("", []string{"namespaces", "pods", "services", "nodes", "endpoints"}, "get", "list", "watch"),
			rule("networking.k8s.io", []string{"networkpolicies"}, "get", "list", "watch"),
			rule("discovery.k8s.io", []string{"endpointslices"}, "get", "list", "watch"),
			rule("coordination.k8s.io", []string{"leases"}, "get", "create", "update"),
			rule("", []string{"services/status"}, "update"),
		)...)
	}
	if n.runs(netpolComponent) {
		out = append(out, userRole(netpolUser, netpolRules(rule)...)...) // netpol.go
	}
	out = append(out, userRole(corednsUser,
		rule("", []string{"endpoints", "services", "pods", "namespaces"}, "list", "watch"),
		rule("discovery.k8s.io", []string{"endpointslices"}, "list", "watch"),
	)...)
	return append(out, []addon{
		{"/api/v1/namespaces/kube-system/services", obj{
			"apiVersion": "v1", "kind": "Service", "metadata": meta("kube-dns", "kube-system", dnsLabels),
			"spec": obj{"clusterIP": clusterDNS, "ports": ports},
		}},
		{"/apis/discovery.k8s.io/v1/namespaces/kube-system/endpointslices", obj{
			"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
			"metadata": meta("kube-dns-k4s", "kube-system", obj{
				"kubernetes.io/service-name":             "kube-dns",
				"endpointslice.kubernetes.io/managed-by": "k4s-node",
			}),
			"addressType": "IPv4",
			"endpoints":   []obj{{"addresses": []string{n.ip.String()}, "conditions": obj{"ready": true}, "nodeName": n.name}},
			"ports":       ports,
		}},
	}...)
}

func (n *node) applyAddons() error {
	for _, a := range n.addons() {
		// Look first: a POST of an existing Service fails on its cluster IP ("already
		// allocated", 422) before the apiserver sees that the Service exists (409).
		name := fmt.Sprint(a.obj["metadata"].(map[string]any)["name"])
		var ae *apiError
		err := n.call("GET", a.path+"/"+name, nil, nil)
		if err == nil {
			if err := n.replaceAddon(a); err != nil {
				return err
			}
			continue
		} else if !errors.As(err, &ae) || ae.code != http.StatusNotFound {
			return err
		}
		err = n.call("POST", a.path, a.obj, nil)
		if errors.As(err, &ae) && ae.code == http.StatusConflict {
			// Already there: after a component restart, or a reboot over a data disk,
			// perhaps of a newer image: what follows from the image and the node's
			// address (RBAC rules, the DNS endpoint) is replaced (replaceOnReboot).
			if err := n.replaceAddon(a); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		md := a.obj["metadata"].(map[string]any)
		log.Printf("created %s %s", a.obj["kind"], md["name"])
	}
	return nil
}

// replaceOnReboot are the add-on kinds replaced when they exist: their content
// follows from the image (RBAC rules) or the node (its address in the DNS
// endpoint), which a boot over a data disk may have changed. Others (the
// Service, join tokens) are kept as they are.
var replaceOnReboot = map[string]bool{"ClusterRole": true, "ClusterRoleBinding": true, "EndpointSlice": true}

func (n *node) replaceAddon(a addon) error {
	if !replaceOnReboot[fmt.Sprint(a.obj["kind"])] {
		return nil
	}
	md := a.obj["metadata"].(map[string]any)
	return n.call("PUT", a.path+"/"+fmt.Sprint(md["name"]), a.obj, nil)
}
