package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"os/exec"
	"strings"
)

// applyKernelFlags sets k4s-node's flags from the kernel command line:
// k4s.<flag>=<value> (k4s.node-name=w1, k4s.lan=eth1,192.168.76.2/24), as a
// device's boot loader passes them or `pants run <target> -- -append ...`
// does. Flags on k4s-node's own command line (the image's uinit_args) win:
// they are parsed after.
func applyKernelFlags(fs *flag.FlagSet, cmdline string) {
	for _, w := range strings.Fields(cmdline) {
		k, v, ok := strings.Cut(w, "=")
		if !ok || !strings.HasPrefix(k, "k4s.") {
			continue
		}
		name := strings.TrimPrefix(k, "k4s.")
		if fs.Lookup(name) == nil {
			log.Printf("kernel argument %s: k4s-node has no flag -%s; ignored", w, name)
			continue
		}
		if err := fs.Set(name, v); err != nil {
			log.Printf("kernel argument %s: %v; ignored", w, err)
		}
	}
}

// lanConfig is the node's address on the network between the cluster's nodes
// (-lan eth1,192.168.76.2/24): the node's IP for the apiserver, the kubelet
// and flannel's VXLAN, while the first interface keeps DHCP (QEMU's user
// network, through which the operator's forwarded ports arrive).
type lanConfig struct {
	iface string
	addr  *net.IPNet // the address, with the network's mask
}

func parseLAN(s string) (*lanConfig, error) {
	if s == "" {
		return nil, nil
	}
	iface, cidr, ok := strings.Cut(s, ",")
	ip, ipnet, err := net.ParseCIDR(cidr)
	if !ok || iface == "" || err != nil || ip.To4() == nil {
		return nil, fmt.Errorf("-lan %q: want <interface>,<IPv4 address>/<prefix length>, e.g. eth1,192.168.76.2/24", s)
	}
	return &lanConfig{iface: iface, addr: &net.IPNet{IP: ip.To4(), Mask: ipnet.Mask}}, nil
}

// network is the LAN's network (the address masked), for CoreDNS's acl.
func (l *lanConfig) network() *net.IPNet {
	return &net.IPNet{IP: l.addr.IP.Mask(l.addr.Mask), Mask: l.addr.Mask}
}

func (l *lanConfig) up() error {
	for _, args := range [][]string{
		{"link", "set", l.iface, "up"},
		{"addr", "add", l.addr.String(), "dev", l.iface},
	} {
		if args[0] == "addr" && l.hasAddr() {
			continue // a restarted supervisor (guardian.go) finds it set up
		}
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	log.Printf("LAN %s on %s", l.addr, l.iface)
	return nil
}

// hasAddr tells whether the LAN interface has its address already.
func (l *lanConfig) hasAddr() bool {
	ifc, err := net.InterfaceByName(l.iface)
	if err != nil {
		return false
	}
	addrs, _ := ifc.Addrs()
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.Equal(l.addr.IP) {
			return true
		}
	}
	return false
}
