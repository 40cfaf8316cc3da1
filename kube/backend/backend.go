// Package backend serves the Engine API's containers and berth's deployment
// endpoints from a Kubernetes cluster (berthd --kubeconfig): pods presented
// as containers (read through an informer), compose projects applied with
// server-side apply of kube.Translate's objects, a plain `docker run` as a
// Pod. What a cluster cannot do, or this backend does not do yet, is refused
// with ErrNotImplemented (501), never pretended. It lives apart from package
// kube so that only berthd links client-go's clientset.
package backend

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/containerd/errdefs"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/discovery"
	appsv1client "k8s.io/client-go/kubernetes/typed/apps/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"

	berthevents "github.com/berthd/berth/events"
	"github.com/berthd/berth/kube"
)

// eventHistory is how many events GET /events?since can replay.
const eventHistory = 1024

// Deps are the backend's dependencies and settings.
type Deps struct {
	// Client is the cluster (NewClient, or the fake clientset in tests).
	Client Client
	// Options are the translation's (namespace prefix, volume size).
	Options kube.Options
	// DefaultNamespace holds the pods of plain `docker run`s; "" means
	// <prefix>berth-default.
	DefaultNamespace string
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// Exec runs execs; nil means pods/exec through remotecommand for a
	// NewClient's Client (execs answer 501 for another).
	Exec Executor
}

// Client is the part of a clientset the backend uses (kubernetes.Interface
// has it): the typed clients of two API groups, not all of them, which
// keeps berthd smaller.
type Client interface {
	CoreV1() corev1client.CoreV1Interface
	AppsV1() appsv1client.AppsV1Interface
	Discovery() discovery.DiscoveryInterfaces
}

// NewClient is the Client of a kubeconfig's REST config.
func NewClient(cfg *rest.Config) (Client, error) {
	core, err := corev1client.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	apps, err := appsv1client.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return client{core, apps, disc, cfg}, nil
}

type client struct {
	core corev1client.CoreV1Interface
	apps appsv1client.AppsV1Interface
	disc discovery.DiscoveryInterfaces
	cfg  *rest.Config // for remotecommand's executors
}

func (c client) CoreV1() corev1client.CoreV1Interface     { return c.core }
func (c client) AppsV1() appsv1client.AppsV1Interface     { return c.apps }
func (c client) Discovery() discovery.DiscoveryInterfaces { return c.disc }

// Backend is the Kubernetes backend. Sync must have returned before it serves.
type Backend struct {
	c     Client
	o     kube.Options
	defNS string
	now   func() time.Time

	podInformer cache.SharedIndexInformer
	pods        corelisters.PodLister

	mu      sync.Mutex
	local   map[string]*local // by container id: containers the cluster has no pod for
	exits   map[string]int    // by container id: the exit code of a removed record, for wait
	quiet   map[string]bool   // by container id: pods berth deletes to stop them (no destroy event)
	bus     *berthevents.Bus  // GET /events, from the pod watch (events.go)
	changed chan struct{}     // closed at every change of pods or records (notify)
	// down are the ordinals of compose replicas berth stopped, by service:
	// a StatefulSet runs ordinals 1..replicas, so it scales down to below
	// the lowest running one that is not down.
	down map[svcKey]map[int]bool
	// replacing are the pending recreates of compose replicas, by the new
	// container's id (recreate.go).
	replacing map[string]replacement
	// pulled are the image references pulled through the backend (the
	// nodes pull them; images.go), with when.
	pulled map[string]time.Time

	// scaleMu orders the read-compute-patch of replica counts.
	scaleMu sync.Mutex
	// stopWindow is how long a replica's stop waits for the stops of the
	// replicas above it.
	stopWindow time.Duration

	executor Executor
	execs    execs
	attaches attaches

	// persistMu orders the writes of compose replicas' records to their
	// StatefulSets (records.go); persistWG counts the writes under way.
	persistMu sync.Mutex
	persistWG sync.WaitGroup
}

// New returns the backend; it reads nothing until Start.
func New(d Deps) (*Backend, error) {
	if d.Client == nil {
		return nil, errors.New("kube backend: no client")
	}
	b := &Backend{c: d.Client, o: d.Options, defNS: d.DefaultNamespace, now: d.Now,
		local: map[string]*local{}, exits: map[string]int{}, quiet: map[string]bool{}, bus: berthevents.New(eventHistory), changed: make(chan struct{}), down: map[svcKey]map[int]bool{}, replacing: map[string]replacement{}, pulled: map[string]time.Time{}, stopWindow: defaultStopWindow}
	if b.defNS == "" {
		b.defNS = d.Options.NamespacePrefix + "berth-default"
	}
	if b.now == nil {
		b.now = time.Now
	}
	b.executor, b.execs.byID = d.Exec, map[string]*kexec{}
	if c, ok := d.Client.(client); ok && b.executor == nil {
		b.executor = remoteExecutor{cfg: c.cfg, core: c.core.RESTClient()}
	}
	if b.executor == nil {
		b.executor = noExecutor{}
	}
	// berth's own objects only: a cluster has many pods berth did not make
	owned := func(o metav1.ListOptions) metav1.ListOptions { o.LabelSelector = ownedSelector; return o }
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (k8sruntime.Object, error) {
			return d.Client.CoreV1().Pods(metav1.NamespaceAll).List(ctx, owned(o))
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			return d.Client.CoreV1().Pods(metav1.NamespaceAll).Watch(ctx, owned(o))
		},
	}
	// the fake clientset does not stream lists (WatchList): it says so, and
	// the reflector lists and watches instead
	b.podInformer = cache.NewSharedIndexInformer(cache.ToListWatcherWithWatchListSemantics(lw, d.Client), &corev1.Pod{}, 0, cache.Indexers{})
	b.pods = corelisters.NewPodLister(b.podInformer.GetIndexer())
	// the handlers run after the cache has the change: waiters re-read it
	if _, err := b.podInformer.AddEventHandler(b.handlers()); err != nil {
		return nil, err
	}
	return b, nil
}

// Sync runs the informers and waits until their caches hold the cluster's
// state, so that the first `docker ps` is not empty by accident, and reads
// back the records of created and stopped compose replicas kept on their
// StatefulSets; the informers run until ctx ends.
func (b *Backend) Sync(ctx context.Context) error {
	go b.podInformer.RunWithContext(ctx)
	if !cache.WaitForCacheSync(ctx.Done(), b.podInformer.HasSynced) {
		return errdefs.ErrUnavailable.WithMessage(fmt.Sprintf("kube backend: the pod informer did not sync: %v", context.Cause(ctx)))
	}
	// the created and stopped compose replicas of a berthd before this one
	return b.restoreRecords(ctx)
}

// Namespace is the namespace of a compose project.
func (b *Backend) Namespace(project string) string { return b.o.NamespacePrefix + project }

// ownedSelector selects what berth made.
var ownedSelector = kube.LabelManagedBy + "=" + kube.ManagedBy

// ownedPods are the pods berth made, from the informer's cache.
func (b *Backend) ownedPods() ([]*corev1.Pod, error) {
	return b.pods.List(labels.Everything())
}

// containerID is a pod's Docker id: 64 hex digits from its namespace and
// name, so it is known before the pod exists (create answers it) and a
// replica the StatefulSet recreates keeps its id.
func containerID(p *corev1.Pod) string {
	n := p.Name
	if r := p.Annotations[kube.AnnotationReplicaOf]; r != "" {
		n = r // a one-shot replica's pod is the replica's (kube.OneShotPod)
	}
	sum := sha256.Sum256([]byte(p.Namespace + "/" + n))
	return hex.EncodeToString(sum[:])
}
