// Package gocache is `k4stool gocache`, the GOCACHEPROG the rewrite's and
// compile's go commands run with [k4s-go].shared_build_cache: Go's GOCACHE
// disk layout locally (gocache.go), REAPI ActionCache + CAS remotely
// (gocache_reapi.go).
package gocache
