package network

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/network"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

// TestBusyboxClients drives the network with the clients the test images
// carry (Debian's static busybox): httpd in one sandbox; nslookup, ping and
// wget in another, resolving through the resolv.conf berth writes (bind-
// mounted over /etc/resolv.conf in a private mount namespace).
func TestBusyboxClients(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.m.CreateNetwork(ctx, network.CreateRequest{Name: "app"})
	assert.NilError(t, err)
	web, client := e.start(t, "web"), e.start(t, "client")
	esWeb := e.attach(t, web, "app", true, "www")
	e.attach(t, client, "app", true)
	t.Cleanup(func() {
		_ = e.m.DeleteSandbox(ctx, web.id)
		_ = e.m.DeleteSandbox(ctx, client.id)
	})

	dir := t.TempDir()
	assert.NilError(t, os.WriteFile(filepath.Join(dir, "index.html"), []byte("hello over berth\n"), 0o644))
	httpd := exec.Command("nsenter", "--net="+web.ns, "busybox", "httpd", "-f", "-p", "80", "-h", dir)
	assert.NilError(t, httpd.Start())
	t.Cleanup(func() { _ = httpd.Process.Kill(); _ = httpd.Wait() })

	resolv := filepath.Join(dir, "resolv.conf")
	assert.NilError(t, os.WriteFile(resolv, []byte("nameserver "+e.m.DNSServer("app").String()+"\nsearch berth.internal\noptions ndots:0\n"), 0o644))
	// (busybox 1.35's wget -T crashes; timeout(1) bounds it instead)
	script := "mount --bind " + resolv + " /etc/resolv.conf && " +
		"busybox nslookup web && busybox ping -c1 -W2 web && " +
		"for i in 1 2 3 4 5 6 7 8 9 10; do busybox timeout 3 busybox wget -q -O- http://www/ && exit 0; sleep 0.3; done; exit 1"
	ctxT, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctxT, "nsenter", "--net="+client.ns, "unshare", "--mount", "--propagation", "private", "sh", "-c", script).CombinedOutput()
	assert.NilError(t, err, string(out))
	s := string(out)
	assert.Check(t, is.Contains(s, "Address: "+esWeb.IPAddress.String()))
	assert.Check(t, is.Contains(s, "1 packets received"))
	assert.Check(t, is.Contains(s, "hello over berth"))
	assert.Check(t, !strings.Contains(s, "NXDOMAIN"), s)
}
