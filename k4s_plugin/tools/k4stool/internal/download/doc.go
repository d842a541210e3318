// Package download is step 1, `k4stool download`: the modules of the
// commands fetched through GOPROXY, verified against go.sum, with the
// target's patches applied (patch.go), as modules.tar; and `k4stool tidy`
// (tidy.go): tools.go from the commands, go.mod/go.sum tidied with the patches
// applied. The download-only k4stool (the k4s_download tag) is this package and
// what it imports (cli, gotool, archive's tar.go).
package download
