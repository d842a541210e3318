// Package sizes is `k4stool sizes`: where a bb's bytes go, by module and
// package, read from the pcln table (so it works on a stripped binary).
package sizes
