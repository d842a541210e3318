package main

import (
	"bufio"
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
	"strings"
	"sync"
	"time"
)

var consoleMu sync.Mutex

// configure writes the PKI, kubeconfigs and configuration files.
func (n *node) configure() error {
	for _, d := range []string{n.dir(), n.dir("kine"), "/etc/cni/net.d", "/etc/containerd", "/var/lib/kubelet"} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	// A CA shipped in the image (/etc/k4s/pki/ca.{crt,key}) is used if present.
	for _, f := range []string{"ca.crt", "ca.key"} {
		if b, err := os.ReadFile("/etc/k4s/pki/" + f); err == nil {
			if err := os.MkdirAll(n.dir("pki"), 0o700); err != nil {
				return err
			}
			if err := os.WriteFile(n.dir("pki", f), b, 0o600); err != nil {
				return err
			}
		}
	}
	p, err := ensurePKI(n.dir("pki"), n.name, []net.IP{n.ip})
	if err != nil {
		return err
	}
	n.pki = p
	for _, c := range []string{"admin", "controller-manager", "kubelet"} {
		if err := p.kubeconfig(n.dir(c+".kubeconfig"), c, n.apiURL()); err != nil {
			return err
		}
	}
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
`, pauseImage),
		"/etc/cni/net.d/10-k4s-bridge.conflist": fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "k4s",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": false,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "%s"}]],
              "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "/run/cni/ipam"}},
    {"type": "loopback"}
  ]
}
`, podCIDR),
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
tlsCertFile: %s
tlsPrivateKeyFile: %s
podCIDR: %s
evictionHard: {memory.available: "50Mi", nodefs.available: "1%%", imagefs.available: "1%%"}
imageGCHighThresholdPercent: 100
serializeImagePulls: false
`, p.path("ca.crt"), clusterDNS, p.path("kubelet-serving.crt"), p.path("kubelet-serving.key"), podCIDR),
	}
	for path, content := range files {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
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
		return []string{"kine", "--endpoint", "sqlite://" + n.dir("kine", "state.db") +
			"?_journal_mode=WAL&_busy_timeout=30000&_synchronous=NORMAL&_txlock=immediate&_stmt_cache_size=20&cache=shared",
			"--listen-address", "127.0.0.1:2379", "--metrics-bind-address", "0"}, nil
	case "kube-apiserver":
		return []string{"kube-apiserver",
			"--etcd-servers=http://127.0.0.1:2379",
			fmt.Sprintf("--secure-port=%d", n.apiPort),
			"--advertise-address=" + n.ip.String(),
			"--tls-cert-file=" + p("apiserver.crt"), "--tls-private-key-file=" + p("apiserver.key"),
			"--client-ca-file=" + p("ca.crt"),
			"--kubelet-client-certificate=" + p("apiserver-kubelet-client.crt"),
			"--kubelet-client-key=" + p("apiserver-kubelet-client.key"),
			"--kubelet-certificate-authority=" + p("ca.crt"),
			"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
			"--service-account-key-file=" + p("sa.pub"),
			"--service-account-signing-key-file=" + p("sa.key"),
			"--service-cluster-ip-range=" + serviceCIDR,
			"--authorization-mode=Node,RBAC",
			"--enable-admission-plugins=NodeRestriction",
			"--allow-privileged=true",
			"--profiling=false",
		}, nil
	case "kube-controller-manager":
		kc := n.dir("controller-manager.kubeconfig")
		return []string{"kube-controller-manager",
			"--kubeconfig=" + kc, "--authentication-kubeconfig=" + kc, "--authorization-kubeconfig=" + kc,
			"--service-account-private-key-file=" + p("sa.key"),
			"--root-ca-file=" + p("ca.crt"),
			"--cluster-signing-cert-file=" + p("ca.crt"), "--cluster-signing-key-file=" + p("ca.key"),
			"--use-service-account-credentials=true",
			"--leader-elect=false",
			"--bind-address=127.0.0.1",
			"--cluster-cidr=" + clusterCIDR,
			"--service-cluster-ip-range=" + serviceCIDR,
		}, nil
	case "containerd":
		return []string{"containerd", "--config", "/etc/containerd/config.toml"}, nil
	case "kubelet":
		return []string{"kubelet",
			"--config=" + n.dir("kubelet.yaml"),
			"--kubeconfig=" + n.dir("kubelet.kubeconfig"),
			"--hostname-override=" + n.name,
			"--node-ip=" + n.ip.String(),
		}, nil
	}
	return nil, fmt.Errorf("unknown component %q (known: %s)", c, strings.Join(allComponents, ", "))
}

// start runs a component under supervision and waits until it is ready.
func (n *node) start(c string) error {
	args, err := n.args(c)
	if err != nil {
		return err
	}
	args = append(args, n.extra[c]...)
	go supervise(c, args)
	switch c {
	case "kine":
		return waitFor(c, 5*time.Minute, func() error { return dial("127.0.0.1:2379") })
	case "kube-apiserver":
		return waitFor(c, 15*time.Minute, func() error { return n.get("/readyz", nil) })
	case "containerd":
		if err := waitFor(c, 5*time.Minute, func() error { return dialUnix("/run/containerd/containerd.sock") }); err != nil {
			return err
		}
		return importImages()
	}
	return nil
}

// supervise runs a command forever: output on the console with a prefix,
// restarted with a growing delay when it exits.
func supervise(name string, args []string) {
	delay := time.Second
	for {
		cmd := exec.Command(args[0], args[1:]...)
		out, _ := cmd.StdoutPipe()
		cmd.Stderr = cmd.Stdout
		started := time.Now()
		if err := cmd.Start(); err != nil {
			log.Printf("%s: %v", name, err)
		} else {
			log.Printf("started %s (pid %d)", name, cmd.Process.Pid)
			prefix(name, out)
			err := cmd.Wait()
			log.Printf("%s exited: %v", name, err)
		}
		if time.Since(started) > time.Minute {
			delay = time.Second
		}
		log.Printf("restarting %s in %s", name, delay)
		time.Sleep(delay)
		if delay < 30*time.Second {
			delay *= 2
		}
	}
}

func prefix(name string, r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		consoleMu.Lock()
		fmt.Fprintf(os.Stdout, "[%s] %s\n", name, sc.Text())
		consoleMu.Unlock()
	}
}

func waitFor(name string, timeout time.Duration, ready func() error) error {
	start := time.Now()
	var err error
	for time.Since(start) < timeout {
		if err = ready(); err == nil {
			log.Printf("%s is ready after %s", name, time.Since(start).Round(time.Second))
			return nil
		}
		time.Sleep(time.Second)
	}
	return fmt.Errorf("not ready after %s: %v", timeout, err)
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

// get calls the apiserver as the admin user; into, if not nil, gets the JSON.
func (n *node) get(path string, into any) error {
	ca, err := os.ReadFile(n.pki.path("ca.crt"))
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	cert, err := tls.LoadX509KeyPair(n.pki.path("admin.crt"), n.pki.path("admin.key"))
	if err != nil {
		return err
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}},
	}}
	resp, err := client.Get(n.apiURL() + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, strings.TrimSpace(string(body)))
	}
	if into != nil {
		return json.Unmarshal(body, into)
	}
	return nil
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
			if err := n.get("/api/v1/nodes/"+n.name, &nd); err == nil {
				for _, c := range nd.Status.Conditions {
					if c.Type == "Ready" && c.Status == "True" {
						log.Printf("node %s is Ready (%s after the components started)", n.name, time.Since(start).Round(time.Second))
						return
					}
				}
			}
			time.Sleep(2 * time.Second)
		}
	}()
}
