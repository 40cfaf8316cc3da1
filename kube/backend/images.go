package backend

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/image"
	corev1 "k8s.io/api/core/v1"

	"github.com/berthd/berth/engine/httputil"
	"github.com/berthd/berth/internal/filters"
)

// Images on this backend: a cluster's nodes pull an image when a pod
// needs it; berthd holds no image and the cluster's API says nothing of
// what a node has pulled. So an image is known to the backend once it was
// pulled through it (POST /images/create records the reference, in
// berthd's memory, and pulls nothing: the kubelet will) or once a
// container berth owns uses it. Its inspect is minimal and partly made up,
// which the docs say: the ID is sha256 of the normalized reference (stable,
// so compose's com.docker.compose.image label never changes and never
// makes compose recreate a service), RepoTags the reference, RepoDigests
// what the kubelets report in pods' imageID; no config, layers or size.
// Every other image endpoint answers 501.

// imageRoutes are the image endpoints the backend serves.
type imageRoutes struct{ b *Backend }

func (r imageRoutes) Routes() []httputil.Route {
	return []httputil.Route{
		httputil.NewGetRoute("/images/json", r.list),
		httputil.NewGetRoute("/images/{name:.*}/json", r.inspect),
		httputil.NewPostRoute("/images/create", r.pull),
	}
}

// normalized is a reference as the kubelet reads it (docker.io/library/
// busybox:latest) and as Docker shows it (busybox:latest).
func normalized(ref string) (full, familiar string, err error) {
	n, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", "", errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("invalid reference format: %s", ref))
	}
	n = reference.TagNameOnly(n)
	return n.String(), reference.FamiliarString(n), nil
}

// refImageID is the made-up, stable ID of a reference.
func refImageID(full string) string {
	sum := sha256.Sum256([]byte("berth-kube-image:" + full))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// knownImages are the images the backend knows, by normalized reference:
// the time it learnt of each, the containers using it and what the
// kubelets reported as their imageID.
type knownImage struct {
	familiar   string
	since      time.Time
	containers int
	digests    []string
}

func (b *Backend) knownImages() map[string]*knownImage {
	out := map[string]*knownImage{}
	add := func(ref string, since time.Time) *knownImage {
		full, familiar, err := normalized(ref)
		if err != nil {
			return nil
		}
		k := out[full]
		if k == nil {
			k = &knownImage{familiar: familiar, since: since}
			out[full] = k
		}
		if since.Before(k.since) {
			k.since = since
		}
		return k
	}
	use := func(p *corev1.Pod) {
		c := mainContainer(p)
		k := add(c.Image, p.CreationTimestamp.Time)
		if k == nil {
			return
		}
		k.containers++
		for _, st := range p.Status.ContainerStatuses {
			if st.Name == c.Name && strings.Contains(st.ImageID, "@sha256:") && !slices.Contains(k.digests, st.ImageID) {
				k.digests = append(k.digests, strings.TrimPrefix(st.ImageID, "docker-pullable://"))
			}
		}
	}
	pods, _ := b.ownedPods()
	for _, p := range pods {
		use(p)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for id, l := range b.local {
		if _, ok := b.inClusterLocked(pods, id); !ok {
			use(l.pod)
		}
	}
	for ref, at := range b.pulled {
		add(ref, at)
	}
	return out
}

func (b *Backend) inClusterLocked(pods []*corev1.Pod, id string) (*corev1.Pod, bool) {
	for _, p := range pods {
		if containerID(p) == id {
			return p, true
		}
	}
	return nil, false
}

func (k *knownImage) inspect(full string) *image.InspectResponse {
	return &image.InspectResponse{
		ID: refImageID(full), RepoTags: []string{k.familiar}, RepoDigests: slices.Sorted(slices.Values(k.digests)),
		Created: k.since.UTC().Format(time.RFC3339Nano), Os: "linux",
		Comment:  "berth: an image the cluster's nodes pull; no config, layers or size are known",
		Metadata: image.Metadata{LastTagTime: k.since},
	}
}

func (r imageRoutes) inspect(ctx context.Context, w http.ResponseWriter, req *http.Request, vars map[string]string) error {
	name := vars["name"]
	known := r.b.knownImages()
	if full, _, err := normalized(name); err == nil {
		if k, ok := known[full]; ok {
			return httputil.WriteJSON(w, http.StatusOK, k.inspect(full))
		}
	}
	for full, k := range known { // by ID
		if id := refImageID(full); id == name || len(name) >= 12 && strings.HasPrefix(strings.TrimPrefix(id, "sha256:"), strings.TrimPrefix(name, "sha256:")) {
			return httputil.WriteJSON(w, http.StatusOK, k.inspect(full))
		}
	}
	return errdefs.ErrNotFound.WithMessage("No such image: " + name)
}

func (r imageRoutes) list(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	if err := httputil.ParseForm(req); err != nil {
		return err
	}
	f, err := filters.Parse(req.Form.Get("filters"))
	if err != nil {
		return err
	}
	if f.Len() > 0 {
		if err := f.Validate("reference"); err != nil {
			return notImplemented("image list filters other than reference")
		}
	}
	out := []image.Summary{}
	for full, k := range r.b.knownImages() {
		if !f.Match("reference", k.familiar) && !f.Match("reference", full) {
			continue
		}
		out = append(out, image.Summary{ID: refImageID(full), RepoTags: []string{k.familiar}, RepoDigests: k.digests,
			Created: k.since.Unix(), Containers: int64(k.containers), Size: -1, SharedSize: -1})
	}
	slices.SortFunc(out, func(a, b image.Summary) int { return strings.Compare(a.RepoTags[0], b.RepoTags[0]) })
	return httputil.WriteJSON(w, http.StatusOK, out)
}

// pull records the reference; the kubelet pulls it when a pod needs it.
// An import (fromSrc) is refused.
func (r imageRoutes) pull(ctx context.Context, w http.ResponseWriter, req *http.Request, _ map[string]string) error {
	if err := httputil.ParseForm(req); err != nil {
		return err
	}
	from := req.Form.Get("fromImage")
	if from == "" {
		if req.Form.Get("fromSrc") != "" {
			return notImplemented("image import (the cluster's nodes pull from registries)")
		}
		return errdefs.ErrInvalidArgument.WithMessage("fromImage or fromSrc is required")
	}
	if tag := req.Form.Get("tag"); tag != "" {
		sep := ":"
		if strings.Contains(tag, ":") {
			sep = "@"
		}
		from += sep + tag
	}
	if p := req.Form.Get("platform"); p != "" {
		return notImplemented("pull --platform (a pod chooses its platform by node selector: compose's platform: is mapped)")
	}
	full, familiar, err := normalized(from)
	if err != nil {
		return err
	}
	r.b.mu.Lock()
	if _, ok := r.b.pulled[full]; !ok {
		r.b.pulled[full] = r.b.now()
	}
	r.b.mu.Unlock()
	st := httputil.NewJSONStream(w)
	tag := familiar[strings.LastIndexAny(familiar, ":@")+1:]
	_ = st.Send(map[string]string{"status": "Pulling from " + reference.FamiliarName(mustNamed(full)), "id": tag})
	_ = st.Send(map[string]string{"status": "Not pulled by berth: the cluster's nodes pull " + familiar + " when a pod needs it"})
	return st.Send(map[string]string{"status": "Status: recorded " + familiar + " for the Kubernetes backend"})
}

func mustNamed(full string) reference.Named {
	n, _ := reference.ParseNormalizedNamed(full)
	return n
}
