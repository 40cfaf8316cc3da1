//go:build ignore

// errno.go prints goerrors.h: go run errno.go > goerrors.h
package main

import (
	"fmt"
	"syscall"
)

func main() {
	fmt.Println("/* Go's syscall.Errno strings for Linux errnos 1-133 (errno.go in this")
	fmt.Println(" * directory prints them; TestGoErrorStrings in cmd/berth-shim checks them). */")
	for i := 1; i < 134; i++ {
		if s := syscall.Errno(i).Error(); s != fmt.Sprintf("errno %d", i) {
			fmt.Printf("[%d] = %q,\n", i, s)
		}
	}
}
