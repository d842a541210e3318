package main

// The datastore: kine on SQLite (k3s-like, kubesolo-like), or etcd (talos-like,
// k0s-like) as kubeadm runs it for one control-plane node, but on 127.0.0.1 only:
// TLS with client certificates on the client and peer ports (the cluster CA
// signs its certificate and the apiserver's client certificate, pki.go),
// metrics on 127.0.0.1:2381, data in /var/lib/k4s/etcd (RAM, or the data disk: disk.go).

const (
	etcdClientAddr = "127.0.0.1:2379"
	etcdPeerURL    = "https://127.0.0.1:2380"
)

func (n *node) etcdArgs() []string {
	p := n.pki.path
	return []string{"etcd",
		"--name=" + n.name,
		"--data-dir=" + n.dir("etcd", "data"),
		"--listen-client-urls=https://" + etcdClientAddr,
		"--advertise-client-urls=https://" + etcdClientAddr,
		"--listen-peer-urls=" + etcdPeerURL,
		"--initial-advertise-peer-urls=" + etcdPeerURL,
		"--initial-cluster=" + n.name + "=" + etcdPeerURL,
		"--listen-metrics-urls=http://127.0.0.1:2381",
		"--cert-file=" + p("etcd.crt"), "--key-file=" + p("etcd.key"),
		"--trusted-ca-file=" + p("ca.crt"), "--client-cert-auth=true",
		"--peer-cert-file=" + p("etcd.crt"), "--peer-key-file=" + p("etcd.key"),
		"--peer-trusted-ca-file=" + p("ca.crt"), "--peer-client-cert-auth=true",
		// RAM, or a small data disk: a smaller backend quota than etcd's 2 GiB,
		// compaction as kube-apiserver asks for it.
		"--quota-backend-bytes=268435456",
		"--snapshot-count=10000",
		// Power loss: etcd fsyncs its WAL before it acknowledges a write and its
		// backend at every commit; --unsafe-no-fsync is never set
		// (TestDatastoreDurability).
	}
}

// datastoreArgs are kube-apiserver's flags for the node's datastore.
func (n *node) datastoreArgs() []string {
	if n.runs("etcd") {
		p := n.pki.path
		return []string{
			"--etcd-servers=https://" + etcdClientAddr,
			"--etcd-cafile=" + p("ca.crt"),
			"--etcd-certfile=" + p("apiserver-etcd-client.crt"),
			"--etcd-keyfile=" + p("apiserver-etcd-client.key"),
		}
	}
	return []string{"--etcd-servers=unix://" + kineSocket(n)}
}
