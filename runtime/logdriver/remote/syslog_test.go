package remote

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/berthd/berth/runtime/logdriver"
	"gotest.tools/v3/assert"
)

// selfSigned writes a CA-less self-signed certificate for 127.0.0.1 and
// returns the server's TLS config and the PEM file a client trusts.
func selfSigned(t *testing.T) (*tls.Config, string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	assert.NilError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "syslog"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	assert.NilError(t, err)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	kb, err := x509.MarshalECPrivateKey(key)
	assert.NilError(t, err)
	pair, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}))
	assert.NilError(t, err)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	assert.NilError(t, os.WriteFile(ca, certPEM, 0o600))
	return &tls.Config{Certificates: []tls.Certificate{pair}}, ca
}

// TestSyslogTCPTLS: tcp+tls with the CA option verifies the server and
// frames rfc5424 messages by their length (RFC 5425), as dockerd does;
// without the CA the server is refused.
func TestSyslogTCPTLS(t *testing.T) {
	srv, ca := selfSigned(t)
	l, err := tls.Listen("tcp", "127.0.0.1:0", srv)
	assert.NilError(t, err)
	defer l.Close()
	got := make(chan string, 4)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					// "<len> <msg>"
					n, err := br.ReadString(' ')
					if err != nil {
						return
					}
					size, _ := strconv.Atoi(n[:len(n)-1])
					buf := make([]byte, size)
					if _, err := ioReadFull(br, buf); err != nil {
						return
					}
					got <- string(buf)
				}
			}()
		}
	}()
	addr := "tcp+tls://" + l.Addr().String()
	opts := map[string]string{"syslog-address": addr, "syslog-format": "rfc5424", "syslog-tls-ca-cert": ca, "syslog-facility": "local0"}
	assert.NilError(t, logdriver.Validate("syslog", opts))
	d, err := openSyslog(logdriver.Config{Driver: "syslog", Opts: opts, Info: logdriver.Info{Tag: "web"}})
	assert.NilError(t, err)
	defer d.Close()
	assert.NilError(t, d.Log(&logdriver.Message{Stream: "stderr", Line: []byte("over tls\n"), Time: time.Now()}))
	select {
	case m := <-got:
		assert.Assert(t, regexp.MustCompile(`^<131>1 \S+ \S+ web \d+ web - over tls\n$`).MatchString(m), "%q", m)
	case <-time.After(10 * time.Second):
		t.Fatal("no message")
	}

	delete(opts, "syslog-tls-ca-cert")
	_, err = openSyslog(logdriver.Config{Driver: "syslog", Opts: opts, Info: logdriver.Info{Tag: "web"}})
	assert.ErrorContains(t, err, "certificate")
}

func ioReadFull(r *bufio.Reader, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		k, err := r.Read(b[n:])
		n += k
		if err != nil {
			return n, err
		}
	}
	return n, nil
}
