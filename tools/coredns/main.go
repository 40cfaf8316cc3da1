// Command coredns is CoreDNS with only the plugins berth's DNS test needs
// (bind, ready, errors, log, rewrite, kubernetes), built from the Go module
// proxy by scripts/coredns.sh for make e2e-kube. Not part of berth's build.
package main

import (
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"

	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/rewrite"
)

// directives in CoreDNS's own order (plugin.cfg): bind and ready only
// configure; a query passes errors, log, rewrite, then kubernetes answers it.
var directives = []string{"bind", "ready", "errors", "log", "rewrite", "kubernetes"}

func init() { dnsserver.Directives = directives }

func main() { coremain.Run() }
