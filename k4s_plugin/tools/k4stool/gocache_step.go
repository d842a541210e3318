//go:build k4s_gocache

package main

import "k4s.dev/tools/k4stool/internal/gocache"

// The shared build cache's GOCACHEPROG, only in the k4stool built with the
// k4s_gocache tag (with k4s_download: `__k4s_tools/k4stool-gocache`, which the
// rules build only when [k4s-go].shared_build_cache is set). Its REAPI client
// (gRPC, protobuf, the remote-apis) is about 125 packages that no other step
// uses, so the step tool every build needs does not compile them.
func init() {
	subcommands["gocache"] = subcommand{gocache.CmdGocache, "-dir GOCACHE [-remote ADDR -instance NAME] [-stats-log FILE] (the go command's GOCACHEPROG)"}
}
