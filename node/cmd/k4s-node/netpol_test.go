package main

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"sigs.k8s.io/knftables"
)

func TestNetpolArgs(t *testing.T) {
	n := &node{name: "n1", data: "/var/lib/k4s"}
	args := n.netpolArgs()
	if args[0] != "kube-network-policies" {
		t.Fatalf("command %q", args[0])
	}
	// Its own user's kubeconfig on a server; metrics on loopback only (upstream: every
	// address); the node name the kubelet registers (its pods are the ones it polices).
	for _, want := range []string{"--kubeconfig=/var/lib/k4s/kube-network-policies.kubeconfig",
		"--metrics-bind-address=127.0.0.1:9080", "--hostname-override=n1"} {
		if !slices.Contains(args, want) {
			t.Errorf("args lack %s: %v", want, args)
		}
	}
	for _, a := range args {
		if strings.HasPrefix(a, "--fail-open") {
			t.Errorf("%s: a node must not let traffic through while the controller is down", a)
		}
	}
	// An agent has no key of its own for it: the node's credentials, bound to the role.
	n.join = &join{server: "https://192.168.76.1:6443"}
	if got := n.netpolArgs()[1]; got != "--kubeconfig="+nodeKubeconfig {
		t.Errorf("agent: %s", got)
	}
	// ... which a server that lets nodes join binds to system:nodes.
	n.join = &join{tokenID: "abcdef", tokenSecret: "0123456789abcdef"}
	n.components = []string{netpolComponent}
	binds := fmt.Sprint(n.joinAddons())
	if !strings.Contains(binds, "k4s:kube-network-policies-nodes") || !strings.Contains(binds, netpolUser) {
		t.Errorf("no binding of system:nodes to %s: %s", netpolUser, binds)
	}
}

func TestNetpolRoleIsUpstreamsAndOnlyWhenRun(t *testing.T) {
	n := &node{name: "n1", ip: []byte{10, 0, 2, 15}, components: []string{"kubelet"}}
	if strings.Contains(fmt.Sprint(n.addons()), netpolUser) {
		t.Fatal("a role for a component the node does not run")
	}
	n.components = append(n.components, netpolComponent)
	var role map[string]any
	for _, a := range n.addons() {
		md := a.obj["metadata"].(map[string]any)
		if a.obj["kind"] == "ClusterRole" && md["name"] == netpolUser {
			role = a.obj
		}
	}
	if role == nil {
		t.Fatal("no ClusterRole for " + netpolUser)
	}
	got := fmt.Sprint(role["rules"])
	// Read-only: list and watch of pods, namespaces and NetworkPolicies, nothing else.
	want := "[map[apiGroups:[] resources:[pods namespaces] verbs:[list watch]] " +
		"map[apiGroups:[networking.k8s.io] resources:[networkpolicies] verbs:[list watch]]]"
	if got != want {
		t.Errorf("rules\n got %s\nwant %s", got, want)
	}
}

func TestPodEgressOnlyWhereThePodNetworkDoesNotMasquerade(t *testing.T) {
	for comps, want := range map[string]bool{
		"kubelet,flanneld":    false, // flanneld's own nftables masquerading
		"kubelet,kube-router": true,  // kube-router's needs iptables
		"kubelet":             true,  // the single-node CNI bridge (ipMasq needs iptables)
	} {
		n := &node{components: strings.Split(comps, ",")}
		if got := n.podEgressNeeded(); got != want {
			t.Errorf("%s: podEgressNeeded %v, want %v", comps, got, want)
		}
	}
}

// TestWritePodEgressTransaction checks the masquerading transaction's text and
// writes it, as knftables feeds it to `nft -f -`, to the file K4S_NFT_TRANSACTION
// names (tests/integration/test_nft.py applies it with the bb's nft and the C nft and
// compares the rulesets, then sends a pod's packet through it).
func TestWritePodEgressTransaction(t *testing.T) {
	nft := knftables.NewFake(knftables.IPv4Family, podEgressTable)
	text := podEgressTransaction(nft).String()
	for _, want := range []string{
		`add table ip k4s-pod-egress { comment "k4s-node: pod egress masquerading" ; }`,
		"flush table ip k4s-pod-egress",
		"add chain ip k4s-pod-egress postrouting { type nat hook postrouting priority 100 ; }",
		"add rule ip k4s-pod-egress postrouting ip saddr 10.42.0.0/16 ip daddr 10.42.0.0/16 return",
		"add rule ip k4s-pod-egress postrouting ip saddr 10.42.0.0/16 ip daddr != 224.0.0.0/4 masquerade fully-random",
	} {
		if !strings.Contains(text, want+"\n") {
			t.Errorf("transaction lacks %q:\n%s", want, text)
		}
	}
	// Run twice (a k4s-node restart): one copy of the rules.
	for range 2 {
		if err := nft.Run(t.Context(), podEgressTransaction(nft)); err != nil {
			t.Fatal(err)
		}
	}
	if rules, err := nft.ListRules(t.Context(), "postrouting"); err != nil || len(rules) != 2 {
		t.Fatalf("after two runs: %d rules, %v", len(rules), err)
	}
	if out := os.Getenv("K4S_NFT_TRANSACTION"); out != "" {
		if err := os.WriteFile(out, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
