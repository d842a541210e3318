package main

import (
	"encoding/json"
	"fmt"
	"os"
)

// Pod network with kube-router (the k0s-like profile), as k0s runs it by
// default: kube-router's router only (--run-router), Services by kube-proxy,
// kube-controller-manager allocating each node a /24 of clusterCIDR
// (spec.podCIDR). kube-router, on the host under k4s-node, puts its node's
// podCIDR into the CNI configuration (a bridge kube-bridge with host-local
// addresses, the template its own DaemonSet installs), and announces it to the
// other nodes over iBGP, which then route to it directly (nodes on one LAN
// need no tunnel).
//
// Not run: kube-router's network policy (--run-firewall) and pod egress
// masquerading: both program iptables and ipset, which are C programs a pure-Go
// busybox does not have (distros/patches/kube-router-route-only.patch lets the
// router start without them). NetworkPolicy is enforced by kube-network-policies
// instead, and pods' egress masqueraded by k4s-node's own nft table (netpol.go).

// kubeRouterUser is kube-router's client certificate's name, bound to the
// k4s:kube-router ClusterRole (addons.go).
const kubeRouterUser = "k4s:kube-router"

const kubeRouterCNIConfig = "/etc/cni/net.d/10-kuberouter.conflist"

// kubeRouterCNITemplate is the configuration kube-router's DaemonSet installs
// (daemonset/generic-kuberouter.yaml), without a subnet: kube-router adds its
// node's podCIDR and MTU at start.
const kubeRouterCNITemplate = `{
  "cniVersion": "1.0.0",
  "name": "kubernetes",
  "plugins": [
    {"type": "bridge", "bridge": "kube-bridge", "isDefaultGateway": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "/run/cni/ipam"}},
    {"type": "loopback"}
  ]
}
`

// rtTables is iproute2's table of routing table names, which kube-router adds
// its own table to; an initramfs has none.
const (
	rtTables        = "/etc/iproute2/rt_tables"
	rtTablesDefault = "255\tlocal\n254\tmain\n253\tdefault\n0\tunspec\n"
)

// nodePodCIDR tells whether kube-controller-manager has given this node its pod
// subnet (spec.podCIDR), which kube-router needs at start.
func (n *node) nodePodCIDR() error {
	var obj struct {
		Spec struct {
			PodCIDR string `json:"podCIDR"`
		} `json:"spec"`
	}
	if err := n.call("GET", "/api/v1/nodes/"+n.name, nil, &obj); err != nil {
		return err
	}
	if obj.Spec.PodCIDR == "" {
		return fmt.Errorf("node %s has no spec.podCIDR yet (kube-controller-manager allocates it)", n.name)
	}
	return nil
}

func (n *node) kubeRouterArgs() []string {
	return []string{"kube-router",
		"--kubeconfig=" + n.componentKubeconfig("kube-router"),
		"--hostname-override=" + n.name,
		"--run-router=true",
		"--run-firewall=false",
		"--run-service-proxy=false",
		"--enable-pod-egress=false",
		// Nodes share one LAN: direct routes, no IP-in-IP tunnel.
		"--enable-overlay=false",
		"--bgp-graceful-restart=true",
		// No health or metrics port (its health server listens on every address).
		"--health-port=0",
		"--metrics-port=0",
	}
}

// kubeRouterCNIReady tells whether kube-router has put a pod subnet into the
// CNI configuration; until then the node has no pod network.
func kubeRouterCNIReady() error {
	data, err := os.ReadFile(kubeRouterCNIConfig)
	if err != nil {
		return err
	}
	subnets, err := cniSubnets(data)
	if err != nil {
		return fmt.Errorf("%s: %v", kubeRouterCNIConfig, err)
	}
	if len(subnets) == 0 {
		return fmt.Errorf("%s has no pod subnet yet (kube-router adds its node's podCIDR)", kubeRouterCNIConfig)
	}
	return nil
}

// cniSubnets returns the subnets of a CNI configuration list's host-local ranges.
func cniSubnets(conflist []byte) ([]string, error) {
	var conf struct {
		Plugins []struct {
			IPAM struct {
				Subnet string `json:"subnet"`
				Ranges [][]struct {
					Subnet string `json:"subnet"`
				} `json:"ranges"`
			} `json:"ipam"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal(conflist, &conf); err != nil {
		return nil, err
	}
	var out []string
	for _, p := range conf.Plugins {
		if p.IPAM.Subnet != "" {
			out = append(out, p.IPAM.Subnet)
		}
		for _, set := range p.IPAM.Ranges {
			for _, r := range set {
				if r.Subnet != "" {
					out = append(out, r.Subnet)
				}
			}
		}
	}
	return out, nil
}
