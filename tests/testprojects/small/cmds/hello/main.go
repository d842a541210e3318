// Command hello is a first-party command of the k4s test project.
package main

import (
	"fmt"
	"os"
	"strings"
)

var greeting = "hello from k4s"

func main() {
	fmt.Println(greeting, strings.Join(os.Args[1:], " "))
}
