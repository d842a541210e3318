//go:build k4s_oci

package main

import "k4s.dev/tools/k4stool/internal/archive"

// The OCI image config step, only in the k4stool built with the k4s_oci tag
// (`__k4s_tools/k4stool-oci`: the step tool and this subcommand). It came after
// the step tool every busybox step runs; kept out of that binary, it left those
// steps' cache keys, and so every built busybox, as they were.
func init() {
	subcommands["oci-config"] = subcommand{archive.CmdOCIConfig, "-in image.tar -user UID[:GID] -out image.tar (set the image config's User)"}
}
