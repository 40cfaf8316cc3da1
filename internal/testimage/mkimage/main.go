// Command mkimage writes the busybox test image as a docker-archive (and,
// with -oci, an OCI archive) from the host's static busybox, offline.
//
//	go run ./internal/testimage/mkimage -o testdata/images/busybox.tar
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/berthd/berth/internal/testimage"
)

func main() {
	out := flag.String("o", "busybox.tar", "docker-archive to write")
	oci := flag.String("oci", "", "also write an OCI archive here")
	tag := flag.String("tag", "busybox:latest", "repo:tag recorded in the archive")
	flag.Parse()
	o := testimage.Options{Tag: *tag}
	res, err := testimage.WriteDockerArchive(*out, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkimage:", err)
		os.Exit(1)
	}
	fmt.Printf("%s: %s (image id %s)\n", *out, *tag, res.ImageID)
	if *oci != "" {
		if _, err := testimage.WriteOCIArchive(*oci, "latest", o); err != nil {
			fmt.Fprintln(os.Stderr, "mkimage:", err)
			os.Exit(1)
		}
		fmt.Printf("%s: OCI archive\n", *oci)
	}
}
