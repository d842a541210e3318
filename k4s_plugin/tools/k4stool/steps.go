//go:build !k4s_download

package main

import (
	"k4s.dev/tools/k4stool/internal/archive"
	"k4s.dev/tools/k4stool/internal/compile"
	"k4s.dev/tools/k4stool/internal/download"
	"k4s.dev/tools/k4stool/internal/rewrite"
	"k4s.dev/tools/k4stool/internal/sizes"
)

// The steps of the full k4stool (every build but the download-only one). The
// shared build cache's GOCACHEPROG is not one of them: gocache_step.go.
func init() {
	for name, c := range map[string]subcommand{
		"rewrite-plan": {rewrite.CmdPlan, "-gomod DIR -modules modules.tar -commands commands.json -plan plan.json " +
			"-deps deps.txt -bbmain bbmain.tar -srcdir DIR [-name PKG=NAME]... [-tag T]... -- PATTERN..."},
		"rewrite-deps":     {rewrite.CmdDeps, "-gomod DIR -modules modules.tar -list deps.txt -out deps.tar [-tag T]..."},
		"rewrite-commands": {rewrite.CmdCommands, "-deps deps.tar -deplist deps.txt -group GROUP.json -needs GROUP.deps -outdir DIR [-tag T]..."},
		"compile":          {compile.CmdCompile, "-tree deps.tar -tree bbmain.tar -tree out.tar... -out bb [-tag T]... [-ldflags FLAGS | -ldflags-file FILE]"},
		"linkexec":         {compile.CmdLinkExec, "FLAGS-FILE TOOL ARGS... (the go command's -toolexec for long -ldflags)"},
		"cpio":             {archive.CmdCpio, "-manifest manifest.json -out initramfs.cpio[.gz|.xz|.zst]"},
		"oci":              {archive.CmdOCI, "-manifest image.json -out image.tar"},
		"oci-config":       {archive.CmdOCIConfig, "-in image.tar -user UID[:GID] -out image.tar (set the image config's User)"},
		"tidy":             {download.CmdTidy, "-gomod DIR -out DIR [-dlcache DIR] [-tag T]... [-patch FILE]... -- PATTERN..."},
		"sizes":            {sizes.CmdSizes, "[-gomod go.mod] [-top N] BINARY (where a bb's bytes go)"},
	} {
		subcommands[name] = c
	}
}
