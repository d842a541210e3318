// Command uuidgen needs github.com/google/uuid, which go.sum here does not pin.
package main

import (
	"fmt"

	"github.com/google/uuid"
)

func main() { fmt.Println(uuid.New()) }
