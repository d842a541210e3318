// Package archive writes the archives of a k4s build, byte for byte the same
// from the same inputs: the tar trees that pass between steps (tar.go), the
// newc cpio of an initramfs from its manifest (`k4stool cpio`, cpio.go) and an
// OCI image layout tar (`k4stool oci`, oci.go).
package archive
