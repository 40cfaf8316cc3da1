package backend

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/volume"
	"gotest.tools/v3/assert"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/berthd/berth/engine"
	"github.com/berthd/berth/kube"
)

type engineClient struct {
	t   *testing.T
	srv *engine.Server
}

func newEngineClient(t *testing.T, b *Backend) engineClient {
	return engineClient{t, engine.New(engine.Config{APIVersion: "1.56", MinAPIVersion: "1.24"}, b.Routers(Version{Berth: "test", APIVersion: "1.56", MinAPIVersion: "1.24"})...)}
}

// do sends a request and decodes a JSON answer into out (when not nil).
func (c engineClient) do(method, path, body string, want int, out any) string {
	c.t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	c.srv.Handler().ServeHTTP(rec, req)
	assert.Equal(c.t, rec.Code, want, "%s %s: %s", method, path, rec.Body.String())
	if out != nil {
		assert.NilError(c.t, json.Unmarshal(rec.Body.Bytes(), out), rec.Body.String())
	}
	return rec.Body.String()
}

// compose's network steps: inspect (404), list by name, create; then
// inspect and list by project label as `down` does, and rm.
func TestNetworksAreNamespaces(t *testing.T) {
	b, cs := newBackend(t)
	c := newEngineClient(t, b)
	ctx := context.Background()
	c.do("GET", "/v1.51/networks/shop_default", "", http.StatusNotFound, nil)
	var list []network.Summary
	c.do("GET", "/v1.51/networks?filters="+url.QueryEscape(`{"name":{"shop_default":true}}`), "", http.StatusOK, &list)
	assert.Equal(t, len(list), 0)

	body := `{"Name":"shop_default","Driver":"","Labels":{"com.docker.compose.project":"shop","com.docker.compose.network":"default","com.docker.compose.version":"2.40.3","com.docker.compose.config-hash":"abc"}}`
	var created network.CreateResponse
	c.do("POST", "/v1.51/networks/create", body, http.StatusCreated, &created)
	ns, err := cs.CoreV1().Namespaces().Get(ctx, "shop", metav1.GetOptions{})
	assert.NilError(t, err)
	assert.Equal(t, ns.Labels[kube.LabelManagedBy], kube.ManagedBy)
	assert.Assert(t, strings.Contains(ns.Annotations["network.berth/default"], `"name":"shop_default"`), ns.Annotations)
	c.do("POST", "/v1.51/networks/create", body, http.StatusConflict, nil)

	var in network.Inspect
	c.do("GET", "/v1.51/networks/shop_default", "", http.StatusOK, &in)
	assert.Equal(t, in.ID, created.ID)
	assert.Equal(t, in.Labels["com.docker.compose.config-hash"], "abc")
	assert.Equal(t, in.Driver, "kubernetes")
	c.do("GET", "/v1.51/networks/"+created.ID[:12], "", http.StatusOK, &in)
	c.do("GET", "/v1.51/networks?filters="+url.QueryEscape(`{"label":{"com.docker.compose.project=shop":true,"com.docker.compose.network=default":true}}`), "", http.StatusOK, &list)
	assert.Equal(t, len(list), 1)
	assert.Equal(t, list[0].Name, "shop_default")
	c.do("GET", "/v1.51/networks?filters="+url.QueryEscape(`{"label":{"com.docker.compose.project=blog":true}}`), "", http.StatusOK, &list)
	assert.Equal(t, len(list), 0)

	// refused by name, nothing made
	for _, tc := range []struct{ body, msg string }{
		{`{"Name":"x","Labels":{}}`, "a network outside a compose project"},
		{`{"Name":"blog_default","Driver":"macvlan","Labels":{"com.docker.compose.project":"blog","com.docker.compose.network":"default"}}`, "driver macvlan"},
		{`{"Name":"blog_default","Internal":true,"Labels":{"com.docker.compose.project":"blog","com.docker.compose.network":"default"}}`, "internal"},
		{`{"Name":"blog_default","IPAM":{"Config":[{"Subnet":"10.5.0.0/16"}]},"Labels":{"com.docker.compose.project":"blog","com.docker.compose.network":"default"}}`, "ipam"},
	} {
		msg := c.do("POST", "/v1.51/networks/create", tc.body, http.StatusNotImplemented, nil)
		assert.Assert(t, strings.Contains(msg, tc.msg), msg)
	}
	_, err = cs.CoreV1().Namespaces().Get(ctx, "blog", metav1.GetOptions{})
	assert.Assert(t, err != nil, "a refused network made its namespace")
	c.do("POST", "/v1.51/networks/shop_default/connect", `{"Container":"x"}`, http.StatusNotImplemented, nil)

	// rm: the record goes, and the namespace with it, berth's and empty
	c.do("DELETE", "/v1.51/networks/shop_default", "", http.StatusNoContent, nil)
	c.do("GET", "/v1.51/networks/shop_default", "", http.StatusNotFound, nil)
	_, err = cs.CoreV1().Namespaces().Get(ctx, "shop", metav1.GetOptions{})
	assert.Assert(t, err != nil, "the empty namespace stayed")
}

// a namespace that holds a claim stays when its network goes; a network
// whose namespace has containers is in use.
func TestNetworkRemoveKeepsClaimsAndRefusesInUse(t *testing.T) {
	b, cs := newBackend(t, shopPods()...)
	c := newEngineClient(t, b)
	ctx := context.Background()
	shop := `{"Name":"shop_default","Labels":{"com.docker.compose.project":"shop","com.docker.compose.network":"default"}}`
	_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop", Labels: map[string]string{kube.LabelManagedBy: kube.ManagedBy}}}, metav1.CreateOptions{})
	assert.NilError(t, err)
	c.do("POST", "/v1.51/networks/create", shop, http.StatusCreated, nil)
	msg := c.do("DELETE", "/v1.51/networks/shop_default", "", http.StatusConflict, nil)
	assert.Assert(t, strings.Contains(msg, "has active endpoints"), msg)

	blog := `{"Name":"blog_default","Labels":{"com.docker.compose.project":"blog2","com.docker.compose.network":"default"}}`
	c.do("POST", "/v1.51/networks/create", blog, http.StatusCreated, nil)
	vol := `{"Name":"blog2_data","Labels":{"com.docker.compose.project":"blog2","com.docker.compose.volume":"data"}}`
	c.do("POST", "/v1.51/volumes/create", vol, http.StatusCreated, nil)
	c.do("DELETE", "/v1.51/networks/blog_default", "", http.StatusNoContent, nil)
	_, err = cs.CoreV1().Namespaces().Get(ctx, "blog2", metav1.GetOptions{})
	assert.NilError(t, err, "the namespace holding a claim went with its network")
	c.do("DELETE", "/v1.51/volumes/blog2_data", "", http.StatusNoContent, nil)
	_, err = cs.CoreV1().Namespaces().Get(ctx, "blog2", metav1.GetOptions{})
	assert.Assert(t, err != nil, "the empty namespace stayed after its last claim")
}

// compose's volume steps: inspect (404), create; then inspect with its
// labels, list, rm; a claim a container mounts is in use.
func TestVolumesAreClaims(t *testing.T) {
	b, cs := newBackend(t)
	c := newEngineClient(t, b)
	ctx := context.Background()
	c.do("GET", "/v1.51/volumes/shop_db_data", "", http.StatusNotFound, nil)
	hash := strings.Repeat("ab", 32)
	body := `{"Name":"shop_db_data","Labels":{"com.docker.compose.project":"shop","com.docker.compose.volume":"db_data","com.docker.compose.version":"2.40.3","com.docker.compose.config-hash":"` + hash + `"}}`
	var v volume.Volume
	c.do("POST", "/v1.51/volumes/create", body, http.StatusCreated, &v)
	assert.Equal(t, v.Name, "shop_db_data")
	claim, err := cs.CoreV1().PersistentVolumeClaims("shop").Get(ctx, "db-data", metav1.GetOptions{})
	assert.NilError(t, err)
	assert.Equal(t, claim.Labels[kube.LabelManagedBy], kube.ManagedBy)
	assert.Equal(t, claim.Labels["com.docker.compose.volume"], "db_data")
	assert.Equal(t, claim.Spec.AccessModes[0], corev1.ReadWriteOnce)
	assert.Equal(t, claim.ManagedFields[0].Manager, volumeManager)

	c.do("GET", "/v1.51/volumes/shop_db_data", "", http.StatusOK, &v)
	assert.Equal(t, v.Labels["com.docker.compose.config-hash"], hash, "a label too long for Kubernetes comes back from its annotation")
	assert.Equal(t, v.Labels["com.docker.compose.project"], "shop")
	assert.Equal(t, v.Status["Claim"], "db-data")
	var list volume.ListResponse
	c.do("GET", "/v1.51/volumes?filters="+url.QueryEscape(`{"label":{"com.docker.compose.project=shop":true}}`), "", http.StatusOK, &list)
	assert.Equal(t, len(list.Volumes), 1)
	c.do("POST", "/v1.51/volumes/create", body, http.StatusCreated, &v) // the existing one

	for _, tc := range []struct{ body, msg string }{
		{`{"Name":"plain"}`, "a volume outside a compose project"},
		{`{"Name":"shop_x","Driver":"nfs","Labels":{"com.docker.compose.project":"shop","com.docker.compose.volume":"x"}}`, "driver and driver options"},
	} {
		msg := c.do("POST", "/v1.51/volumes/create", tc.body, http.StatusNotImplemented, nil)
		assert.Assert(t, strings.Contains(msg, tc.msg), msg)
	}

	// a container that mounts it keeps it
	pod := replica("shop", "db", "1", t0, running(t0), true)
	pod.Spec.Volumes = []corev1.Volume{{Name: "d", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "db-data"}}}}
	_, err = cs.CoreV1().Pods("shop").Create(ctx, &pod, metav1.CreateOptions{})
	assert.NilError(t, err)
	waitFor(t, "the pod in the informer", func() bool { return len(b.claimUsers("shop", "db-data")) == 1 })
	msg := c.do("DELETE", "/v1.51/volumes/shop_db_data", "", http.StatusConflict, nil)
	assert.Assert(t, strings.Contains(msg, "volume is in use"), msg)
	assert.NilError(t, cs.CoreV1().Pods("shop").Delete(ctx, "db-1", metav1.DeleteOptions{}))
	waitFor(t, "the pod gone from the informer", func() bool { return len(b.claimUsers("shop", "db-data")) == 0 })
	c.do("DELETE", "/v1.51/volumes/shop_db_data", "", http.StatusNoContent, nil)
	_, err = cs.CoreV1().PersistentVolumeClaims("shop").Get(ctx, "db-data", metav1.GetOptions{})
	assert.Assert(t, err != nil, "claim still there")
}

// compose's image steps: inspect (404), pull (recorded, the nodes pull),
// inspect with a stable ID; a running pod's image is known with its digest.
func TestImagesTheNodesPull(t *testing.T) {
	p := replica("shop", "db", "1", t0, running(t0), true)
	p.Status.ContainerStatuses[0].ImageID = "docker.io/library/db@sha256:" + strings.Repeat("1", 64)
	b, _ := newBackend(t, p)
	c := newEngineClient(t, b)
	c.do("GET", "/v1.51/images/postgres:16/json", "", http.StatusNotFound, nil)
	out := c.do("POST", "/v1.51/images/create?fromImage=postgres&tag=16", "", http.StatusOK, nil)
	assert.Assert(t, strings.Contains(out, "the cluster's nodes pull postgres:16"), out)
	var in, again image.InspectResponse
	c.do("GET", "/v1.51/images/postgres:16/json", "", http.StatusOK, &in)
	c.do("GET", "/v1.51/images/docker.io/library/postgres:16/json", "", http.StatusOK, &again)
	assert.Equal(t, in.ID, again.ID)
	assert.Equal(t, in.ID, refImageID("docker.io/library/postgres:16"))
	assert.DeepEqual(t, in.RepoTags, []string{"postgres:16"})
	c.do("GET", "/v1.51/images/"+in.ID+"/json", "", http.StatusOK, &again)
	assert.Equal(t, again.RepoTags[0], "postgres:16")

	c.do("GET", "/v1.51/images/db:1/json", "", http.StatusOK, &in)
	assert.DeepEqual(t, in.RepoDigests, []string{"docker.io/library/db@sha256:" + strings.Repeat("1", 64)})
	var list []image.Summary
	c.do("GET", "/v1.51/images/json", "", http.StatusOK, &list)
	assert.Equal(t, len(list), 2)
	assert.Equal(t, list[0].RepoTags[0], "db:1")
	assert.Equal(t, list[0].Containers, int64(1))

	c.do("POST", "/v1.51/images/create?fromSrc=-", "", http.StatusNotImplemented, nil)
	c.do("POST", "/v1.51/images/create?fromImage=busybox&platform=linux/arm64", "", http.StatusNotImplemented, nil)
	c.do("GET", "/v1.51/images/json?filters="+url.QueryEscape(`{"dangling":{"true":true}}`), "", http.StatusNotImplemented, nil)
}
