// Command etcd is the etcd server of the release Kubernetes supports (the version pinned in go.mod).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
