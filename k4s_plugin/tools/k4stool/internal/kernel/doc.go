// Package kernel is the kernel steps, only in the k4stool built with the
// k4s_kernel tag (so the step tool every busybox step runs stays as it was):
// `k4stool kernel-index` unpacks a pinned Debian kernel package and indexes it
// (image, control fields, modules.dep/softdep/alias from .modinfo), and
// `k4stool kernel-modules` extracts a module closure.
package kernel
