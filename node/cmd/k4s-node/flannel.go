package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
)

// Pod network with flannel (the k3s-like and talos-like profiles): flanneld from
// the bb, run by k4s-node on the host, in its kube subnet manager mode (as k3s
// runs it): kube-controller-manager allocates each node a /24 of clusterCIDR
// (spec.podCIDR), flanneld reads it, sets up its VXLAN device flannel.1 and the
// routes to the other nodes' subnets, masquerades pod traffic leaving the
// cluster network through nftables (the bb's pure-Go nft), and writes
// /run/flannel/subnet.env.
//
// flannel's CNI plugin (github.com/flannel-io/cni-plugin) is not served by the
// Go module proxy this repository builds from, so its one job at each pod ADD,
// turning subnet.env into a bridge + host-local configuration, is done here once
// subnet.env exists: writeFlannelCNIConfig writes the configuration the plugin
// would delegate (bridge cni0, the node's subnet, flannel's MTU, default route
// through the bridge, no masquerading by the bridge since flanneld does it).

// flannelUser is flanneld's client certificate's name, bound to the k4s:flannel
// ClusterRole (addons.go).
const flannelUser = "k4s:flannel"

const (
	flannelNetConf    = "/etc/kube-flannel/net-conf.json"
	flannelSubnetFile = "/run/flannel/subnet.env"
	flannelCNIConfig  = "/etc/cni/net.d/10-flannel.conflist"
)

// flannelNetConfig is flanneld's network configuration: the cluster's pod
// network, VXLAN (flannel's default backend, as in k3s), nftables instead of
// iptables (a pure-Go bb has no iptables; knftables runs the bb's nft).
func flannelNetConfig() string {
	return fmt.Sprintf(`{
  "Network": %q,
  "EnableIPv4": true,
  "EnableNFTables": true,
  "Backend": {"Type": "vxlan"}
}
`, clusterCIDR)
}

func (n *node) flanneldArgs() []string {
	return []string{"flanneld",
		"--kube-subnet-mgr",
		"--kubeconfig-file=" + n.componentKubeconfig("flannel"),
		"--net-config-path=" + flannelNetConf,
		"--subnet-file=" + flannelSubnetFile,
		"--iface=" + n.ip.String(),
		"--ip-masq",
		// No health or metrics port: nothing of flanneld listens.
		"--healthz-port=0",
	}
}

// writeFlannelCNIConfig writes the CNI configuration from flanneld's
// subnet.env; until it exists, the kubelet reports the network not ready.
func writeFlannelCNIConfig() error {
	env, err := readEnvFile(flannelSubnetFile)
	if err != nil {
		return err
	}
	subnet, network, mtu := env["FLANNEL_SUBNET"], env["FLANNEL_NETWORK"], env["FLANNEL_MTU"]
	if subnet == "" || network == "" || mtu == "" {
		return fmt.Errorf("%s lacks FLANNEL_SUBNET, FLANNEL_NETWORK or FLANNEL_MTU", flannelSubnetFile)
	}
	// FLANNEL_SUBNET names the bridge's address (10.42.1.1/24); host-local wants the network.
	_, sn, err := net.ParseCIDR(subnet)
	if err != nil {
		return fmt.Errorf("%s: FLANNEL_SUBNET: %v", flannelSubnetFile, err)
	}
	subnet = sn.String()
	conf := fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "cbr0",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "mtu": %s, "hairpinMode": true,
     "isGateway": true, "isDefaultGateway": true, "ipMasq": false,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]],
              "routes": [{"dst": %q}], "dataDir": "/run/cni/ipam"}},
    {"type": "loopback"}
  ]
}
`, mtu, subnet, network)
	if err := os.MkdirAll(filepath.Dir(flannelCNIConfig), 0o755); err != nil {
		return err
	}
	return os.WriteFile(flannelCNIConfig, []byte(conf), 0o644)
}

// readEnvFile reads KEY=VALUE lines.
func readEnvFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "="); ok {
			env[k] = v
		}
	}
	return env, sc.Err()
}
