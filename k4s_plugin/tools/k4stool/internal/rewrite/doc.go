// Package rewrite is step 2, gobusybox's rewrite as three subcommands keyed by
// what each reads: `k4stool rewrite-plan` (rewriteplan.go: command names, the
// dependency list, each command's own files, bb's main package),
// `k4stool rewrite-deps` (rewritedeps.go: the dependencies re-printed) and
// `k4stool rewrite-commands` (rewritecmd.go: the commands of one Go module,
// type-checked against their dependencies' export data); what they share is
// bbgen.go.
package rewrite
