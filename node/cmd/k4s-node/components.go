package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

var consoleMu sync.Mutex

// console is where components' lines go (the serial console).
var console io.Writer = os.Stdout

// pids of the running components (procs.go), for the memory report at Ready too.
var (
	pidsMu sync.Mutex
	pids   = map[string]int{}
)

// configure writes the PKI, kubeconfigs and configuration files.
func (n *node) configure() error {
	// State only root may read: keys, the datastore (kine's socket is its only door).
	for _, d := range []string{n.dir(), n.dir("kine"), n.dir("etcd"), n.dir("audit"), "/var/lib/kubelet"} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
		if err := os.Chmod(d, 0o700); err != nil {
			return err
		}
	}
	for _, d := range []string{"/etc/cni/net.d", "/etc/containerd", "/etc/coredns", "/etc/kube-flannel", "/etc/iproute2"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	if n.agent() {
		// An agent bootstraps its kubelet's credentials from the server (join.go).
		if err := n.configureAgent(); err != nil {
			return err
		}
	} else {
		p, err := ensurePKI(n.dir("pki"), n.name, []net.IP{n.ip}, n.certLifetime)
		if err != nil {
			return err
		}
		n.pki = p
		for _, c := range []string{"admin", "controller-manager", "scheduler", "kubelet", "kube-proxy", "coredns", "flannel", "kube-router", netpolComponent} {
			if err := p.kubeconfig(n.dir(c+".kubeconfig"), c, n.apiURL()); err != nil {
				return err
			}
		}
	}
	p := n.pki
	files := map[string]string{
		"/etc/containerd/config.toml": fmt.Sprintf(`version = 3
root = "/var/lib/containerd"
state = "/run/containerd"
# The runc shim's "task" service is linked into the same bb (see
# distros/patches/containerd-shim-plugins.patch); it is not a daemon plugin.
disabled_plugins = ["io.containerd.ttrpc.v1.task"]

[grpc]
  address = "/run/containerd/containerd.sock"

[plugins."io.containerd.cri.v1.images".pinned_images]
  sandbox = "%s"

[plugins."io.containerd.cri.v1.runtime".cni]
  bin_dirs = ["/bbin"]
  conf_dir = "/etc/cni/net.d"

[plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
  BinaryName = "/bbin/runc"
  SystemdCgroup = false
  # The root is the kernel's initramfs (rootfs), which pivot_root cannot leave:
  # runc moves the container's root over / and chroots instead (as it does on
  # ramdisks), so the node needs no tmpfs copy of the whole image.
  NoPivotRoot = true
`, pauseImage),
		n.dir("kubelet.yaml"): fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: %s}
authorization: {mode: Webhook}
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix:///run/containerd/containerd.sock
failSwapOn: false
clusterDNS: [%s]
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
%s
%s
# The root filesystem is RAM: evict before the kernel's OOM killer has to act.
%s
evictionHard: {memory.available: "100Mi", nodefs.available: "10%%", imagefs.available: "10%%"}
imageGCHighThresholdPercent: 100
serializeImagePulls: false
# The node log query (kubectl get --raw "/api/v1/nodes/<node>/proxy/logs/?query=kubelet"): /var/log/<name>.log (logs.go).
enableSystemLogQuery: true
`, p.path("ca.crt"), clusterDNS, n.kubeletServingCert(), n.kubeletPodCIDR(), kubeletReservation()),
		n.dir("admission.yaml"): `apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: PodSecurity
  configuration:
    apiVersion: pod-security.admission.config.k8s.io/v1
    kind: PodSecurityConfiguration
    # Pod Security Standards "baseline" for every namespace without its own labels.
    defaults: {enforce: baseline, enforce-version: latest, audit: restricted, audit-version: latest, warn: restricted, warn-version: latest}
    exemptions: {usernames: [], runtimeClasses: [], namespaces: []}
`,
		n.dir("audit-policy.yaml"): `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
# Noise: leases, events, health checks.
- level: None
  resources: [{group: coordination.k8s.io, resources: [leases]}, {group: "", resources: [events]}]
- level: None
  nonResourceURLs: [/healthz*, /livez*, /readyz*, /version]
# Secrets and tokens: who and when, never the content.
- level: Metadata
  resources: [{group: "", resources: [secrets, configmaps, serviceaccounts/token]}]
- level: Metadata
`,
		"/etc/coredns/Corefile": n.corefile(),
	}
	if n.runs("flanneld") {
		// The CNI configuration follows from flanneld's subnet.env (flannel.go).
		files[flannelNetConf] = flannelNetConfig()
	} else if n.runs("kube-router") {
		// kube-router adds the node's podCIDR at start (kuberouter.go).
		files[kubeRouterCNIConfig] = kubeRouterCNITemplate
		files[rtTables] = rtTablesDefault
	} else {
		// One node, one static pod network: a bridge with host-local addresses.
		files["/etc/cni/net.d/10-k4s-bridge.conflist"] = fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "k4s",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "%s"}]],
              "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "/run/cni/ipam"}},
    {"type": "loopback"}
  ]
}
`, podCIDR)
	}
	for path, content := range files {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			return err
		}
	}
	// Files the kubelet reads that an initramfs does not have.
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	for path, content := range map[string]string{
		"/etc/resolv.conf": "nameserver 10.0.2.3\n",
		"/etc/passwd":      "root:x:0:0:root:/root:/bin/sh\n",
		"/etc/group":       "root:x:0:\n",
		"/etc/hosts":       "127.0.0.1 localhost " + n.name + "\n::1 localhost\n",
		"/etc/machine-id":  hex.EncodeToString(id) + "\n",
	} {
		if _, err := os.Stat(path); err != nil {
			if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

// args returns a component's command line.
func (n *node) args(c string) ([]string, error) {
	p := n.pki.path
	switch c {
	case "kine":
		// kine's own SQLite defaults (pkg/drivers/sqlite DefaultParams): without the busy
		// timeout and immediate transactions, concurrent writers fail under load.
		// synchronous=FULL, not kine's NORMAL: in WAL mode NORMAL syncs the WAL only at
		// checkpoints, so a power cut can roll back commits the apiserver acknowledged;
		// FULL syncs the WAL at every commit (README: the data disk).
		// On a unix socket in a 0700 directory, as k3s runs it: no TCP port that a
		// hostNetwork pod could use to bypass the apiserver's authn/authz.
		return []string{"kine", "--endpoint", "sqlite://" + n.dir("kine", "state.db") +
			"?_journal_mode=WAL&_busy_timeout=30000&_synchronous=FULL&_txlock=immediate&_stmt_cache_size=20&cache=shared",
			"--listen-address", "unix://" + kineSocket(n), "--metrics-bind-address", "0"}, nil
	case "kube-apiserver":
		return append([]string{"kube-apiserver",
			fmt.Sprintf("--secure-port=%d", n.apiPort),
			"--advertise-address=" + n.ip.String(),
			"--tls-cert-file=" + p("apiserver.crt"), "--tls-private-key-file=" + p("apiserver.key"),
			"--client-ca-file=" + p("ca.crt"),
			"--kubelet-client-certificate=" + p("apiserver-kubelet-client.crt"),
			"--kubelet-client-key=" + p("apiserver-kubelet-client.key"),
			"--kubelet-certificate-authority=" + p("ca.crt"),
			// Reach kubelets (logs, exec, port-forward) at their node IP, as k3s does:
			// node names need not resolve (the node has no DNS for them).
			"--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
			"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
			"--service-account-key-file=" + p("sa.pub"),
			"--service-account-signing-key-file=" + p("sa.key"),
			"--service-cluster-ip-range=" + serviceCIDR,
			// The front proxy, as kubeadm sets it up (aggregated APIs; components read it).
			"--requestheader-client-ca-file=" + p("front-proxy-ca.crt"),
			"--requestheader-allowed-names=front-proxy-client",
			"--requestheader-username-headers=X-Remote-User",
			"--requestheader-group-headers=X-Remote-Group",
			"--requestheader-extra-headers-prefix=X-Remote-Extra-",
			"--proxy-client-cert-file=" + p("front-proxy-client.crt"),
			"--proxy-client-key-file=" + p("front-proxy-client.key"),
			"--authorization-mode=Node,RBAC",
			// Joining nodes' kubelets authenticate with a bootstrap token (join.go).
			fmt.Sprintf("--enable-bootstrap-token-auth=%t", n.join != nil),
			"--enable-admission-plugins=NodeRestriction",
			"--admission-control-config-file=" + n.dir("admission.yaml"),
			"--anonymous-auth=false",
			"--allow-privileged=false",
			"--profiling=false",
			"--audit-policy-file=" + n.dir("audit-policy.yaml"),
			"--audit-log-path=" + n.dir("audit", "audit.log"),
			"--audit-log-maxsize=8", "--audit-log-maxbackup=1", // MiB, in RAM or on the data disk
		}, n.datastoreArgs()...), nil
	case "etcd":
		return n.etcdArgs(), nil
	case "kube-controller-manager":
		kc := n.dir("controller-manager.kubeconfig")
		return []string{"kube-controller-manager",
			"--kubeconfig=" + kc, "--authentication-kubeconfig=" + kc, "--authorization-kubeconfig=" + kc,
			"--service-account-private-key-file=" + p("sa.key"),
			"--root-ca-file=" + p("ca.crt"),
			"--cluster-signing-cert-file=" + p("ca.crt"), "--cluster-signing-key-file=" + p("ca.key"),
			"--use-service-account-credentials=true",
			// Certificates it signs (agents' kubelets) live as long as the node's own (renew.go).
			"--cluster-signing-duration=" + n.certLifetime.String(),
			// Expired bootstrap tokens (join.go) are deleted, as kubeadm's are.
			"--controllers=*,tokencleaner",
			"--leader-elect=false",
			"--bind-address=127.0.0.1",
			"--profiling=false",
			"--cluster-cidr=" + clusterCIDR,
			"--service-cluster-ip-range=" + serviceCIDR,
			// With flannel or kube-router, each node's pod subnet is allocated here
			// (spec.podCIDR), as in k3s and k0s; the single-node bridge uses a fixed
			// one (kubelet.yaml).
			fmt.Sprintf("--allocate-node-cidrs=%t", n.podNetworkPerNode()),
		}, nil
	case "flanneld":
		return n.flanneldArgs(), nil
	case "kube-router":
		return n.kubeRouterArgs(), nil
	case netpolComponent:
		return n.netpolArgs(), nil
	case "kube-scheduler":
		kc := n.dir("scheduler.kubeconfig")
		return []string{"kube-scheduler",
			"--kubeconfig=" + kc, "--authentication-kubeconfig=" + kc, "--authorization-kubeconfig=" + kc,
			"--leader-elect=false",
			"--bind-address=127.0.0.1",
			"--profiling=false",
		}, nil
	case "coredns":
		return []string{"coredns", "-conf", "/etc/coredns/Corefile"}, nil
	case "kube-proxy":
		return []string{"kube-proxy",
			"--proxy-mode=nftables",
			"--kubeconfig=" + n.componentKubeconfig("kube-proxy"),
			"--hostname-override=" + n.name,
			"--cluster-cidr=" + clusterCIDR,
			"--metrics-bind-address=127.0.0.1:10249",
			"--healthz-bind-address=127.0.0.1:10256",
			"--nodeport-addresses=primary",
		}, nil
	case "containerd":
		return []string{"containerd", "--config", "/etc/containerd/config.toml"}, nil
	case "kubelet":
		if n.agent() {
			return []string{"kubelet",
				"--config=" + n.dir("kubelet.yaml"),
				"--bootstrap-kubeconfig=" + n.dir("bootstrap.kubeconfig"),
				"--kubeconfig=" + nodeKubeconfig,
				"--cert-dir=/var/lib/kubelet/pki",
				"--hostname-override=" + n.name,
				"--node-ip=" + n.ip.String(),
			}, nil
		}
		return []string{"kubelet",
			"--config=" + n.dir("kubelet.yaml"),
			"--kubeconfig=" + n.dir("kubelet.kubeconfig"),
			"--hostname-override=" + n.name,
			"--node-ip=" + n.ip.String(),
		}, nil
	}
	return nil, fmt.Errorf("unknown component %q (known: %s)", c, strings.Join(allComponents, ", "))
}

// kubeletServingCert is kubelet.yaml's serving certificate: signed here with the
// CA, or, on an agent, requested from the cluster (approved by the server's
// k4s-node, join.go) and rotated, as the client certificate is.
func (n *node) kubeletServingCert() string {
	if n.agent() {
		return "serverTLSBootstrap: true\nrotateCertificates: true"
	}
	return fmt.Sprintf("tlsCertFile: %s\ntlsPrivateKeyFile: %s", n.pki.path("kubelet-serving.crt"), n.pki.path("kubelet-serving.key"))
}

// componentKubeconfig is the kubeconfig of flanneld, kube-router or kube-proxy: its own
// user's on a server, the node's (the kubelet's, once bootstrapped) on an agent.
func (n *node) componentKubeconfig(user string) string {
	if n.agent() {
		return nodeKubeconfig
	}
	return n.dir(user + ".kubeconfig")
}

// kubeletPodCIDR is kubelet.yaml's podCIDR line: the fixed single-node pod network,
// or none when kube-controller-manager allocates it (flannel).
func (n *node) kubeletPodCIDR() string {
	if n.podNetworkPerNode() {
		return "# podCIDR: allocated by kube-controller-manager (spec.podCIDR), read by the network"
	}
	return "podCIDR: " + podCIDR
}

// podNetworkPerNode tells whether each node gets its own pod subnet from
// kube-controller-manager (a multi-node pod network: flannel or kube-router).
func (n *node) podNetworkPerNode() bool { return n.runs("flanneld") || n.runs("kube-router") }

// start runs a component under supervision and waits until it is ready.
func (n *node) start(c string) error {
	args, err := n.args(c)
	if err != nil {
		return err
	}
	args = append(args, n.extra[c]...)
	if c == "kube-router" {
		// kube-router exits at start while its node has no spec.podCIDR.
		waitFor("the node's pod CIDR", n.nodePodCIDR)
	}
	go supervise(c, args)
	switch c {
	case "kine", "etcd":
		if c == "kine" {
			waitFor(c, func() error { return dialUnix(kineSocket(n)) })
		} else {
			waitFor(c, func() error { return dial(etcdClientAddr) })
		}
		// A snapshot handed to the node goes in before kube-apiserver starts (restore.go).
		if err := n.restoreSnapshot(); err != nil {
			return err
		}
		n.serveSnapshots(snapshotPort)
	case "kube-apiserver":
		waitFor(c, func() error { return n.call("GET", "/readyz", nil, nil) })
		waitFor("cluster add-ons", n.applyAddons)
		if n.join != nil {
			go n.approveServingCSRs()
		}
	case "containerd":
		waitFor(c, func() error { return dialUnix("/run/containerd/containerd.sock") })
		waitFor("images", importImages)
	case "kubelet":
		// kube-proxy reads its node's addresses at start and restarts itself when they
		// appear later: start what follows once the kubelet has registered the node.
		if n.agent() {
			waitFor("node credentials", nodeCredentialsReady)
		}
		waitFor("node registration", func() error { return n.call("GET", "/api/v1/nodes/"+n.name, nil, nil) })
		if n.podEgressNeeded() {
			waitFor("pod egress masquerading", ensurePodEgress) // netpol.go
		}
	case "flanneld":
		waitFor("pod network", writeFlannelCNIConfig)
	case "kube-router":
		waitFor("pod network", kubeRouterCNIReady)
	}
	return nil
}

func kineSocket(n *node) string { return n.dir("kine", "kine.sock") }

// memoryShare is each component's soft memory limit (GOMEMLIMIT), as a share of
// the machine's RAM: the Go runtime collects harder as a component nears it, so
// the node fits small machines (1 GiB) without changing any component.
var memoryShare = map[string]float64{
	"kube-apiserver": 0.20, "kube-controller-manager": 0.06, "kube-scheduler": 0.04,
	"kubelet": 0.06, "containerd": 0.05, "kine": 0.05, "etcd": 0.08, "kube-proxy": 0.04, "coredns": 0.04,
	"flanneld": 0.03, "kube-router": 0.04, netpolComponent: 0.03,
}

// goMemoryEnv is the Go runtime's memory settings for a component: GOGC=50 (the
// heap may grow to 1.5x the live data, not 2x) and GOMEMLIMIT from memoryShare.
func goMemoryEnv(name string) []string {
	env := []string{"GOGC=50"}
	if share, ok := memoryShare[name]; ok {
		if total := memTotalBytes(); total > 0 {
			env = append(env, fmt.Sprintf("GOMEMLIMIT=%dMiB", int64(float64(total)*share)>>20))
		}
	}
	return env
}

func memTotalBytes() int64 {
	var info unix.Sysinfo_t
	if err := unix.Sysinfo(&info); err != nil {
		return 0
	}
	return int64(info.Totalram) * int64(info.Unit)
}

// supervise runs a command until the node shuts down: output on the console with a
// prefix, its process in the registry (procs.go: oom_score_adj, restartComponent,
// shutdown), restarted with a growing delay when it exits (restartDelay).
func supervise(name string, args []string) {
	var delay time.Duration
	for mayStart() {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = append(os.Environ(), goMemoryEnv(name)...)
		out, _ := cmd.StdoutPipe()
		cmd.Stderr = cmd.Stdout
		started := time.Now()
		pid := 0
		if err := cmd.Start(); err != nil {
			log.Printf("%s: %v", name, err)
		} else {
			pid = cmd.Process.Pid
			log.Printf("started %s (pid %d)", name, pid)
			componentStarted(name, pid)
			prefix(name, out)
			err := cmd.Wait()
			log.Printf("%s exited: %v", name, err)
		}
		again, asked := componentExited(name, pid)
		if !again {
			return
		}
		delay = restartDelay(delay, time.Since(started), asked)
		log.Printf("restarting %s in %s", name, delay)
		time.Sleep(delay)
	}
}

// prefix copies a component's output to the console, a line at a time with
// its name in front, and to its log file (logs.go). It always drains the pipe:
// a line longer than the buffer is printed in pieces (a scanner would stop at
// it, and the component would then block writing to a full pipe).
func prefix(name string, r io.Reader) {
	if f := logFile(name); f != nil {
		f.create()
	}
	br := bufio.NewReaderSize(r, 64*1024)
	for {
		line, err := br.ReadSlice('\n')
		if len(line) > 0 {
			consoleMu.Lock()
			fmt.Fprintf(console, "[%s] %s\n", name, strings.TrimRight(string(line), "\n"))
			consoleMu.Unlock()
			if f := logFile(name); f != nil {
				f.writeLine(line)
			}
		}
		if err != nil && err != bufio.ErrBufferFull {
			return
		}
	}
}

// waitFor polls ready until it succeeds, saying on the console every minute
// what it is still waiting for and why. It does not give up: on a slow
// machine (TCG) the apiserver can need many minutes.
func waitFor(name string, ready func() error) {
	start, last := time.Now(), time.Now()
	for {
		err := ready()
		if err == nil {
			log.Printf("%s is ready after %s", name, time.Since(start).Round(time.Second))
			return
		}
		if time.Since(last) > time.Minute {
			log.Printf("still waiting for %s after %s: %v", name, time.Since(start).Round(time.Second), err)
			last = time.Now()
		}
		time.Sleep(time.Second)
	}
}

func dial(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
	}
	return err
}

func dialUnix(path string) error {
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
	}
	return err
}

// apiClient is the node's own admin client (on an agent, the node's own
// credentials, once its kubelet has them): one for every call, so that
// polling reuses its connection instead of opening one per request.
func (n *node) apiClient() (*http.Client, error) {
	n.clientOnce.Do(func() {
		ca, err := os.ReadFile(n.pki.path("ca.crt"))
		if err != nil {
			n.clientErr = err
			return
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(ca)
		certFile, keyFile := n.pki.path("admin.crt"), n.pki.path("admin.key")
		if n.agent() {
			certFile, keyFile = nodeClientCert, nodeClientCert // the node's own identity
		}
		// Read at each handshake: renewed certificates need no restart (renew.go).
		cert := &clientCert{certFile: certFile, keyFile: keyFile}
		if _, err := cert.get(nil); err != nil {
			n.clientErr = err
			return
		}
		n.client = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool, GetClientCertificate: cert.get},
			MaxIdleConns:    2,
		}}
	})
	return n.client, n.clientErr
}

// call sends a request to the apiserver as the node's admin; body (if not
// nil) is sent as JSON, and into (if not nil) receives the JSON answer.
func (n *node) call(method, path string, body, into any) error {
	client, err := n.apiClient()
	if err != nil {
		return err
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, n.apiURL()+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return &apiError{method, path, resp.StatusCode, strings.TrimSpace(string(data))}
	}
	if into != nil {
		return json.Unmarshal(data, into)
	}
	return nil
}

type apiError struct {
	method, path string
	code         int
	body         string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s %s: HTTP %d: %s", e.method, e.path, e.code, e.body)
}

// watchNodeReady logs when the node first reports Ready.
func (n *node) watchNodeReady() {
	start := time.Now()
	go func() {
		for {
			var nd struct {
				Status struct {
					Conditions []struct{ Type, Status, Reason, Message string }
				}
			}
			if err := n.call("GET", "/api/v1/nodes/"+n.name, nil, &nd); err == nil {
				for _, c := range nd.Status.Conditions {
					if c.Type == "Ready" && c.Status == "True" {
						log.Printf("node %s is Ready (%s after the components started; %s since boot; MemAvailable %s)",
							n.name, time.Since(start).Round(time.Second), uptime(), memAvailable())
						log.Printf("memory at Ready (RssAnon: heap and stacks; the bb text is shared): %s", componentRSS())
						return
					}
				}
			}
			time.Sleep(2 * time.Second)
		}
	}()
}

// memAvailable is /proc/meminfo's MemAvailable, for the console.
func memAvailable() string {
	data, _ := os.ReadFile("/proc/meminfo")
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "MemAvailable:" {
			var kb int
			fmt.Sscan(f[1], &kb)
			return fmt.Sprintf("%d MiB", kb/1024)
		}
	}
	return "unknown"
}

// uptime is the time since the kernel started.
func uptime() string {
	data, _ := os.ReadFile("/proc/uptime")
	var s float64
	fmt.Sscan(string(data), &s)
	return (time.Duration(s) * time.Second).String()
}

// statusKB is a "<field> <n> kB" line of /proc/<pid>/status.
func statusKB(status, field string) (int, bool) {
	for _, line := range strings.Split(status, "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == field {
			kb, err := strconv.Atoi(f[1])
			return kb, err == nil
		}
	}
	return 0, false
}

// componentRSS lists the anonymous resident memory (RssAnon) of each component and of
// k4s-node's own processes (the supervisor and its guardian), largest first.
func componentRSS() string {
	pidsMu.Lock()
	defer pidsMu.Unlock()
	type rss struct {
		name string
		kb   int
	}
	procs := map[string]int{"k4s-node": os.Getpid()}
	if isSupervisor() {
		procs["k4s-node guardian"] = os.Getppid()
	}
	for name, pid := range pids {
		procs[name] = pid
	}
	var all []rss
	for name, pid := range procs {
		data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if kb, ok := statusKB(string(data), "RssAnon:"); ok {
			all = append(all, rss{name, kb})
		}
	}
	sort.Slice(all, func(i, j int) bool {
		return all[i].kb > all[j].kb || all[i].kb == all[j].kb && all[i].name < all[j].name
	})
	var parts []string
	for _, r := range all {
		parts = append(parts, fmt.Sprintf("%s %d MiB", r.name, r.kb/1024))
	}
	return strings.Join(parts, ", ")
}
