package main

import (
	"context"
	"fmt"
	"time"

	"sigs.k8s.io/knftables"
)

// NetworkPolicy on every node profile: sigs.k8s.io/kube-network-policies
// (v0.8.0, the Kubernetes SIG Network project), run unmodified on the host as a
// component of k4s-node, the way its DaemonSet runs it on other clusters. It is
// pure Go: it programs its own nftables table (inet kube-network-policies) over
// netlink with github.com/google/nftables, and reads the first packet of each new
// connection to or from a pod that a policy selects through NFQUEUE (kernel
// modules nft_queue and nfnetlink_queue) with github.com/florianl/go-nfqueue,
// then accepts or drops it after evaluating the policies; conntrack lets the
// rest of an accepted connection through. It learns new pods' addresses from
// containerd over NRI before the apiserver has them. The one change:
// distros/patches/kube-network-policies-kubeconfig.patch, a --kubeconfig flag
// (upstream reads only the in-cluster service account of its Pod).
//
// Fail closed (upstream's default): while it is not running, the first packet of
// a new connection to a selected pod is dropped by the kernel (nobody reads the
// queue), so a restart never lets unpermitted traffic through.

const (
	netpolComponent = "kube-network-policies"
	// netpolUser is its client certificate's name, bound to the
	// k4s:kube-network-policies ClusterRole (addons.go): the rules of upstream's
	// install.yaml.
	netpolUser = "k4s:kube-network-policies"
	// netpolMetrics: upstream listens on every address (:9080); here loopback only.
	netpolMetrics = "127.0.0.1:9080"
)

func (n *node) netpolArgs() []string {
	return []string{netpolComponent,
		"--kubeconfig=" + n.componentKubeconfig(netpolComponent),
		"--hostname-override=" + n.name,
		"--metrics-bind-address=" + netpolMetrics,
	}
}

// netpolRules are the API permissions it needs (upstream's install.yaml).
func netpolRules(rule func(group string, resources []string, verbs ...string) map[string]any) []map[string]any {
	return []map[string]any{
		rule("", []string{"pods", "namespaces"}, "list", "watch"),
		rule("networking.k8s.io", []string{"networkpolicies"}, "list", "watch"),
	}
}

// Pod egress masquerading where the pod network does not do it: kube-router's
// (k0s-like) programs iptables, which a pure-Go bb has not, and the single-node
// CNI bridge (kubesolo-like) would use iptables too (ipMasq). flanneld
// (k3s-like, talos-like) masquerades through the bb's nft itself. Without it a
// pod's packets leave the node with their pod address, which nothing outside
// routes back (QEMU's user network drops them).
const podEgressTable = "k4s-pod-egress"

// podEgressTransaction is flannel's own masquerade rules for the cluster
// network (flannel_test.go has them): traffic between pods keeps its
// addresses; traffic from a pod to anywhere else, but multicast, leaves with
// the node's address. The table is replaced as a whole, so a restart of
// k4s-node leaves one copy.
func podEgressTransaction(nft knftables.Interface) *knftables.Transaction {
	tx := nft.NewTransaction()
	tx.Add(&knftables.Table{Comment: knftables.PtrTo("k4s-node: pod egress masquerading")})
	tx.Flush(&knftables.Table{})
	tx.Add(&knftables.Chain{
		Name:     "postrouting",
		Type:     knftables.PtrTo(knftables.NATType),
		Hook:     knftables.PtrTo(knftables.PostroutingHook),
		Priority: knftables.PtrTo(knftables.SNATPriority),
	})
	tx.Add(&knftables.Rule{Chain: "postrouting", Rule: knftables.Concat("ip saddr", clusterCIDR, "ip daddr", clusterCIDR, "return")})
	tx.Add(&knftables.Rule{Chain: "postrouting", Rule: knftables.Concat("ip saddr", clusterCIDR, "ip daddr", "!=", "224.0.0.0/4", "masquerade fully-random")})
	return tx
}

// podEgressNeeded: every node whose pod network does not masquerade itself.
func (n *node) podEgressNeeded() bool { return !n.runs("flanneld") }

// ensurePodEgress installs the masquerading with the bb's nft (knftables runs it).
func ensurePodEgress() error {
	nft, err := knftables.New(knftables.IPv4Family, podEgressTable)
	if err != nil {
		return fmt.Errorf("pod egress masquerading: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := nft.Run(ctx, podEgressTransaction(nft)); err != nil {
		return fmt.Errorf("pod egress masquerading (nft table ip %s): %w", podEgressTable, err)
	}
	return nil
}
