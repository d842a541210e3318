// Package vm is `k4stool vm`, what `pants run` runs: QEMU with the serial
// console on the terminal, KVM only where it boots a kernel, port forwards, a
// second network card between VMs (-lan), a data disk (vmdisk.go), the cluster
// identity (package identity) and datastore snapshots (snapshot.go).
package vm
