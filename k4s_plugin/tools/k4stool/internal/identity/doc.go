// Package identity is the cluster identity `k4stool vm` hands a node: the CA
// and the operator's admin credentials and kubeconfig (identity.go), join
// tokens and an agent's initrd (join.go), Talos-style machine configs
// (machineconfig.go). The names of the files it writes under etc/k4s/identity
// are the contract package's, which k4s-node reads.
package identity
