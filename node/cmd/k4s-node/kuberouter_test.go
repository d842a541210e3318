package main

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestKubeRouterCNITemplateHasNoSubnetUntilKubeRouterAddsOne(t *testing.T) {
	subnets, err := cniSubnets([]byte(kubeRouterCNITemplate))
	if err != nil || len(subnets) != 0 {
		t.Fatalf("template: subnets %v, err %v; want none", subnets, err)
	}
	// What kube-router v2.1.0 writes back (utils.cniNetworkConfig: ranges of the
	// bridge plugin's IPAM, and the MTU).
	filled := strings.Replace(kubeRouterCNITemplate, `"ipam": {"type": "host-local",`,
		`"mtu": 1500, "ipam": {"ranges": [[{"subnet": "10.42.1.0/24"}]], "type": "host-local",`, 1)
	subnets, err = cniSubnets([]byte(filled))
	if err != nil || !reflect.DeepEqual(subnets, []string{"10.42.1.0/24"}) {
		t.Fatalf("filled: subnets %v, err %v", subnets, err)
	}
	if _, err := cniSubnets([]byte("{")); err == nil {
		t.Fatal("a broken configuration was accepted")
	}
}

func TestKubeRouterRunsOnlyWhatAPureGoNodeCan(t *testing.T) {
	n := &node{name: "n1", data: "/var/lib/k4s"}
	args := n.kubeRouterArgs()
	// The features that need iptables/ipset are off (the route-only patch's
	// condition), and nothing of kube-router listens but BGP.
	for _, want := range []string{"--run-router=true", "--run-firewall=false", "--run-service-proxy=false",
		"--enable-pod-egress=false", "--health-port=0", "--metrics-port=0", "--hostname-override=n1"} {
		if !slices.Contains(args, want) {
			t.Errorf("kube-router args lack %s: %v", want, args)
		}
	}
	n.components = []string{"kube-router"}
	if !n.podNetworkPerNode() {
		t.Error("with kube-router, kube-controller-manager must allocate node pod CIDRs")
	}
}
