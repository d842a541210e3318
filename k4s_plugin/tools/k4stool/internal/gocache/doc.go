// Package gocache is `k4stool gocache`, the GOCACHEPROG the rewrite's and
// compile's go commands run with [k4s-go].shared_build_cache: Go's GOCACHE
// disk layout locally (gocache.go), REAPI ActionCache + CAS remotely
// (gocache_reapi.go). Only k4stool built with the k4s_gocache tag
// (k4stool-gocache) imports it: its gRPC client is in no other tool.
package gocache
