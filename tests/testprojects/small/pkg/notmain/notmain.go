// Package notmain is a library, not a command.
package notmain

// Answer is not a command.
func Answer() int { return 42 }
