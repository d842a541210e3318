// Command tool (b) shares its name with the other cmds/*/tool.
package main

import "fmt"

func main() { fmt.Println("tool b") }
