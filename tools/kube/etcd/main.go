// Command etcd is etcd's server, built from go.etcd.io/etcd/server/v3 (the
// etcd main module is not what the proxy serves for a library build).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
