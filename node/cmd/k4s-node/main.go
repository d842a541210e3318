// Command k4s-node is the node supervisor of k4s' appliance profiles
// (k3s-like, k0s-like, talos-like, kubesolo-like), in the spirit of k3s' server/agent
// loop: run as u-root's uinit, it prepares the diskless machine (mounts,
// kernel modules, sysctls, network), writes a PKI from the cluster identity
// handed to the node at boot (identity.go) or, on an agent, bootstraps the
// kubelet's credentials from the server it joins (join.go), writes the
// components' configuration, and then starts the image's component table
// (/etc/k4s/components: e.g. kine or etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, containerd, the kubelet, flanneld or
// kube-router, CoreDNS and kube-proxy) in order, restarting any that exits, with their
// output on the console prefixed by their name, killing and restarting any that
// hangs (liveness.go). SIGTERM, SIGINT or the power button stop the node in
// reverse order and power it off (shutdown.go). The process u-root's init starts
// is a guardian that runs this supervisor as its child and restarts it if it dies
// (guardian.go).
//
// It never exits: u-root's init would start a root shell on the console.
// A setup problem is printed on the console, with what to do, every minute.
package main

import (
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

const (
	serviceCIDR = "10.43.0.0/16"
	serviceIP   = "10.43.0.1"
	clusterDNS  = "10.43.0.10"
	clusterCIDR = "10.42.0.0/16"
	podCIDR     = "10.42.0.0/24"
)

var allComponents = []string{"kine", "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "containerd", "kubelet", "flanneld", "kube-router", "coredns", "kube-proxy", "kube-network-policies"}

func main() {
	log.SetFlags(0)
	log.SetPrefix("[k4s-node] ")
	log.SetOutput(ownLog{os.Stderr}) // the console, and /var/log/k4s-node.log (logs.go)
	data := flag.String("data", "/var/lib/k4s", "state directory (RAM on the appliance, or the data disk: -disk)")
	nodeName := flag.String("node-name", "", "node name (default: the hostname, or k4s-node)")
	components := flag.String("components", defaultComponents(), "components to run, in order (default: /etc/k4s/components, the initramfs' node_components)")
	system := flag.Bool("system", os.Getpid() != 1 && isInitramfs(), "set up the machine: mounts, tmpfs root, modules, sysctls, network (default: when / is the initramfs)")
	apiPort := flag.Int("api-port", 6443, "kube-apiserver's secure port")
	lanFlag := flag.String("lan", "", "<interface>,<address>/<prefix>: the node's address on the network between the cluster's nodes, e.g. eth1,192.168.76.2/24 (default: the first interface's DHCP address)")
	certLifetime := flag.Duration("cert-lifetime", 365*24*time.Hour, "lifetime of the leaf certificates (renewed at ~2/3 of it without a restart: renew.go); at least 10m")
	tokenTTL := flag.Duration("join-token-ttl", 24*time.Hour, "how long the join token's Secret authenticates joining nodes after the server's boot (0: no expiry), as kubeadm's token TTL")
	ntpServers := flag.String("ntp", "", "NTP servers, <host>[:<port>] separated by commas: the clock is set from them at boot and kept in sync (ntp.go); none: the RTC's time, unsynchronised")
	logDir := flag.String("log-dir", "", "directory of the components' log files, <component>.log (default: /var/log with -system, else none)")
	logMax := flag.Int("log-max", 16, "MiB all log files together may hold (each rotated once at its share; RAM on a diskless node)")
	flag.IntVar(&snapshotPort, "snapshot-port", defaultSnapshotPort, "port of the datastore snapshot endpoint on the node's primary address (mTLS, system:masters; 0: none)")
	var extra extraArgs
	flag.Var(&extra, "extra-arg", "<component>=<argument> to add to a component's command line (repeatable), e.g. kube-apiserver=--v=2")
	// k4s.<flag>=<value> on the kernel command line sets a flag (cmdline.go).
	if cmdline, err := os.ReadFile("/proc/cmdline"); err == nil {
		applyKernelFlags(flag.CommandLine, string(cmdline))
	}
	flag.Parse()
	if *system && !isSupervisor() {
		// The supervisor runs as this guardian's child, restarted if it dies (guardian.go).
		guard()
		return
	}
	if isSupervisor() {
		setOOMScoreAdj("k4s-node", os.Getpid(), -999)
	}
	// A Talos-style machine config, if the node was handed one (machineconfig.go).
	mc, err := loadMachineConfig(identityDir)
	if err != nil {
		halt("%v", err)
	}
	componentList := strings.Split(*components, ",")
	if mc != nil {
		componentList = mc.apply(nodeName, lanFlag, componentList)
	}
	lan, err := parseLAN(*lanFlag)
	if err != nil {
		halt("%v", err)
	}

	if err := checkCertLifetime(*certLifetime); err != nil {
		halt("%v", err)
	}
	ntp, err := parseNTPServers(*ntpServers)
	if err != nil {
		halt("%v", err)
	}
	if *system {
		if err := setupSystem(lan, *data); err != nil {
			halt("system setup failed: %v", err)
		}
		// The clock, before the PKI is issued: certificates are valid from the time
		// they are made (rtc.go, ntp.go).
		clockFromRTC()
		go keepClockSynced(ntp, syncClock(ntp))
	}
	name := *nodeName
	if name == "" {
		name, _ = os.Hostname()
		if name == "" || name == "localhost" || name == "(none)" {
			name = "k4s-node"
		}
	}
	if *system {
		if err := unix.Sethostname([]byte(name)); err != nil {
			log.Printf("sethostname: %v", err)
		}
	}
	ip := nodeIP(lan)
	log.Printf("node %s, address %s", name, ip)
	joinMaterial, err := loadJoin(identityDir)
	if err != nil {
		halt("%v", err)
	}

	var run []string
	for _, c := range componentList {
		c = strings.TrimSpace(c)
		if _, err := os.Stat("/bbin/" + c); *system && err != nil {
			log.Printf("%s: not in this image's busybox; not started", c)
			continue
		}
		run = append(run, c)
	}
	// flanneld and kube-router find their node by NODE_NAME (they are not pods).
	os.Setenv("NODE_NAME", name)
	// kube-router's CNI configuration (a flag only in its DaemonSet's environment).
	os.Setenv("KUBE_ROUTER_CNI_CONF_FILE", kubeRouterCNIConfig)
	if *logDir == "" && *system {
		*logDir = "/var/log"
	}
	if *logDir != "" {
		if err := openLogFiles(*logDir, *logMax, run); err != nil {
			log.Printf("%v: the logs are on the console only", err)
		}
	}
	n := &node{name: name, ip: ip, lan: lan, data: *data, apiPort: *apiPort, extra: extra.byComponent(), components: run, join: joinMaterial,
		certLifetime: *certLifetime, tokenTTL: *tokenTTL}
	// SIGTERM, SIGINT or the power button: an orderly shutdown (shutdown.go).
	reqs := shutdownRequests()
	go func() { n.shutdown(<-reqs, *system) }()
	if err := n.configure(); err != nil {
		halt("configuration failed: %v", err)
	}
	if !n.agent() {
		// From now on: starting the components may outlast short certificate lifetimes.
		go n.renewCertificates()
	}
	start := time.Now()
	for _, c := range run {
		if err := n.start(c); err != nil {
			halt("%s: %v", c, err)
		}
	}
	log.Printf("all components started in %s", time.Since(start).Round(time.Second))
	n.watchNodeReady()
	// Certificates renewed before they expire (renew.go).
	if n.agent() {
		go n.watchClientCert(nodeClientCert)
	}
	// Hung components are killed and restarted (liveness.go); shutdown ends this.
	n.watchLiveness()
	select {}
}

// defaultComponents is the image's component table (the initramfs target's
// `node_components`, checked at build time against the busybox), or all.
func defaultComponents() string {
	data, err := os.ReadFile("/etc/k4s/components")
	if err != nil {
		return strings.Join(allComponents, ",")
	}
	return strings.Join(strings.Fields(string(data)), ",")
}

// halt reports a problem that stops the node from starting Kubernetes, on
// the console every minute, and never returns: exiting would hand the
// console to a root shell (u-root's init runs one when uinit exits).
func halt(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	for {
		log.Printf("ERROR: %s", msg)
		log.Printf("ERROR: Kubernetes is not started on this node. Fix the above and reboot.")
		time.Sleep(time.Minute)
	}
}

// isInitramfs tells whether / is the kernel's initial rootfs (ramfs or tmpfs
// named "rootfs"), which cannot be pivot_root'ed out of.
func isInitramfs() bool {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 9 && f[4] == "/" {
			for i, x := range f {
				if x == "-" && i+2 < len(f) {
					return f[i+1] == "rootfs" || f[i+2] == "rootfs"
				}
			}
		}
	}
	return false
}

// nodeIP is the LAN address if the node has one (-lan), else the first global
// IPv4 address of an interface other than lo (which holds the cluster DNS
// address), or 127.0.0.1.
func nodeIP(lan *lanConfig) net.IP {
	if lan != nil {
		return lan.addr.IP
	}
	ifaces, _ := net.Interfaces()
	for _, ifc := range ifaces {
		if ifc.Flags&net.FlagLoopback != 0 || ifc.Flags&net.FlagUp == 0 {
			continue
		}
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil && ipn.IP.IsGlobalUnicast() {
				return ipn.IP.To4()
			}
		}
	}
	return net.ParseIP("127.0.0.1").To4()
}

type node struct {
	name    string
	ip      net.IP
	data    string
	apiPort int
	pki     *pki
	extra   map[string][]string
	lan     *lanConfig // nil: no network between nodes
	join    *join      // nil: a node of its own
	// certLifetime: of the leaf certificates (renew.go); tokenTTL: of the join token's Secret.
	certLifetime, tokenTTL time.Duration
	// components are the components this node runs, in start order.
	components []string

	clientOnce sync.Once
	client     *http.Client // the node's own admin client, shared by every API call
	clientErr  error
}

type extraArgs []string

func (e *extraArgs) String() string     { return strings.Join(*e, " ") }
func (e *extraArgs) Set(v string) error { *e = append(*e, v); return nil }

func (e extraArgs) byComponent() map[string][]string {
	m := map[string][]string{}
	for _, kv := range e {
		if c, arg, ok := strings.Cut(kv, "="); ok {
			m[c] = append(m[c], arg)
		} else {
			halt("-extra-arg %q: want <component>=<argument>", kv)
		}
	}
	return m
}

func (n *node) dir(parts ...string) string {
	return filepath.Join(append([]string{n.data}, parts...)...)
}

func (n *node) runs(component string) bool {
	for _, c := range n.components {
		if c == component {
			return true
		}
	}
	return false
}

// apiURL is the apiserver: this node's own, or an agent's server.
func (n *node) apiURL() string {
	if n.agent() {
		return n.join.server
	}
	return fmt.Sprintf("https://127.0.0.1:%d", n.apiPort)
}

func goarch() string { return runtime.GOARCH }
