// Package contract is the cluster identity's contract between k4stool, which
// writes the files (package identity, `k4stool vm`), and k4s-node, which reads
// them: their names under the node's etc/k4s/identity, and the port of the
// node's datastore snapshot endpoint. This file is the one place they are
// spelled: k4s-node's copy, a block at the end of
// node/cmd/k4s-node/identity.go, is generated from it (`go generate
// ./k4stool/internal/contract` in k4s_plugin/tools; gen/main.go says why a
// block and not a file), and tests/integration/test_node.py fails while that copy is stale.
package contract

//go:generate go run ./gen -out ../../../../../node/cmd/k4s-node/identity.go

const (
	// Dir holds the identity, relative to the image's root (the node reads
	// /etc/k4s/identity).
	Dir = "etc/k4s/identity"
	// CACert is the cluster CA's certificate (PEM).
	CACert = "ca.crt"
	// CAKey is the cluster CA's private key (PEM; a server only).
	CAKey = "ca.key"
	// JoinToken is the bootstrap token (<id>.<secret>) with which agents join.
	JoinToken = "join-token"
	// Server is the apiserver URL an agent joins (an agent only).
	Server = "server"
	// MachineConfig is a Talos-style machine config, given instead of the
	// files above.
	MachineConfig = "machine-config.yaml"
	// Snapshot is a datastore snapshot for a server to restore at boot.
	Snapshot = "datastore.snapshot"
	// SnapshotPort is the node's datastore snapshot endpoint (mTLS,
	// system:masters), which `k4stool vm -snapshot` reaches.
	SnapshotPort = 6444
)
