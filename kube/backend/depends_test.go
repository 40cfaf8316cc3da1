package backend

import (
	"context"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"gotest.tools/v3/assert"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/berthd/berth/compose"
	"github.com/berthd/berth/kube/backend/backendtest"
)

func setExists(cs *fake.Clientset, ns, name string) bool {
	_, err := cs.AppsV1().StatefulSets(ns).Get(context.Background(), name, metav1.GetOptions{})
	return err == nil
}

// berth compose up applies web (depends_on db: service_healthy) only once
// db's pod is ready, and worker (depends_on db, service_started) as soon as
// db's pod runs, without waiting for web.
func TestUpWaitsForDependencies(t *testing.T) {
	b, cs := newBackend(t)
	backendtest.Run(t, cs, backendtest.Options{Started: t0, NotReady: map[string]bool{"db": true}})
	var dbReady atomic.Bool
	early := backendtest.EarlyScaleUps(cs, "shop", "web", &dbReady)
	dir, err := filepath.Abs("../testdata/shop")
	assert.NilError(t, err)
	done := make(chan error, 1)
	go func() {
		_, err := b.Up(context.Background(), compose.UpRequest{LoadOptions: compose.LoadOptions{WorkingDir: dir, ProjectName: "shop", ConfigFiles: []string{"compose.yaml"}}})
		done <- err
	}()
	waitFor(t, "worker applied while db is not ready", func() bool { return setExists(cs, "shop", "worker") })
	insp, err := b.Inspect(context.Background(), "shop-db-1", false)
	assert.NilError(t, err)
	assert.Equal(t, insp.State.Health.Status, container.Starting, "a running pod not ready yet is starting")
	assert.Assert(t, !setExists(cs, "shop", "web"), "web applied before db is ready")

	dbReady.Store(true)
	assert.NilError(t, backendtest.SetReady(context.Background(), cs, "shop", "db-1", true))
	select {
	case err := <-done:
		assert.NilError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("up did not return once db was ready")
	}
	assert.Assert(t, setExists(cs, "shop", "web"))
	assert.DeepEqual(t, early(), []string(nil))
	insp, err = b.Inspect(context.Background(), "shop-db-1", false)
	assert.NilError(t, err)
	assert.Equal(t, insp.State.Health.Status, container.Healthy)
	assert.DeepEqual(t, insp.Config.Healthcheck.Test, []string{"CMD-SHELL", "pg_isready -U postgres"})
	assert.Equal(t, insp.Config.Healthcheck.Interval, 2*time.Second)
	assert.Equal(t, insp.Config.Healthcheck.Retries, 10)
	assert.Equal(t, insp.Config.Healthcheck.StartPeriod, 30*time.Second)
}

// A dependency that cannot become healthy fails the up there, in compose's
// words, and its dependent is not applied.
func TestUpFailsOnDependency(t *testing.T) {
	t.Run("unhealthy", func(t *testing.T) {
		b, cs := newBackend(t)
		// not ready two minutes after its start: unhealthy
		backendtest.Run(t, cs, backendtest.Options{Started: t0.Add(-2 * time.Minute), NotReady: map[string]bool{"db": true}})
		_, err := upProject(t, b, "shop", "")
		assert.ErrorContains(t, err, "dependency failed to start: container shop-db-1 is unhealthy")
		assert.Assert(t, errdefs.IsFailedPrecondition(err), "%v", err)
		assert.Assert(t, !setExists(cs, "shop", "web"))
	})
	t.Run("no healthcheck", func(t *testing.T) {
		b, cs := newBackend(t)
		runController(t, cs)
		_, err := upProject(t, b, "p", "services:\n  a:\n    image: x\n  b:\n    image: x\n    depends_on:\n      a:\n        condition: service_healthy\n")
		assert.ErrorContains(t, err, "dependency failed to start: container p-a-1 has no healthcheck configured")
		assert.Assert(t, !setExists(cs, "p", "b"))
	})
}

// upProject is berth compose up of the project in dir (testdata's shop
// when yaml is "", else yaml).
func upProject(t *testing.T, b *Backend, project, yaml string) (*compose.UpResult, error) {
	t.Helper()
	dir, err := filepath.Abs("../testdata/shop")
	assert.NilError(t, err)
	if yaml != "" {
		dir = t.TempDir()
		writeFile(t, filepath.Join(dir, "compose.yaml"), yaml)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return b.Up(ctx, compose.UpRequest{LoadOptions: compose.LoadOptions{WorkingDir: dir, ProjectName: project, ConfigFiles: []string{"compose.yaml"}}})
}

// compose v2's start of a replica scales its StatefulSet up only once the
// services it depends on are ready, even when compose did not wait (docker
// start of the container).
func TestStartReplicaWaitsForDependencies(t *testing.T) {
	b, cs := newBackend(t)
	backendtest.Run(t, cs, backendtest.Options{Started: t0, NotReady: map[string]bool{"db": true}})
	ctx := context.Background()
	var dbReady atomic.Bool
	early := backendtest.EarlyScaleUps(cs, "shop", "web", &dbReady)
	db, err := b.Create(ctx, composeCreate(t, "db.json", 1))
	assert.NilError(t, err)
	web, err := b.Create(ctx, composeCreate(t, "web-2.json", 1))
	assert.NilError(t, err)
	assert.NilError(t, b.Start(ctx, db.ID))
	started := make(chan error, 1)
	go func() { started <- b.Start(ctx, web.ID) }()
	waitFor(t, "db's pod", func() bool {
		_, err := b.pods.Pods("shop").Get("db-1")
		return err == nil
	})
	assert.Equal(t, replicasOf(t, cs, "shop", "web"), 0, "web scaled up before db is ready")

	dbReady.Store(true)
	assert.NilError(t, backendtest.SetReady(ctx, cs, "shop", "db-1", true))
	select {
	case err := <-started:
		assert.NilError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("start did not return once db was ready")
	}
	assert.Equal(t, replicasOf(t, cs, "shop", "web"), 1)
	assert.DeepEqual(t, early(), []string(nil))
}

// berth compose up --wait returns once every replica runs and the ones
// with a healthcheck are healthy; an unhealthy one fails it, and Timeout
// bounds it.
func TestUpWait(t *testing.T) {
	const project = "services:\n  a:\n    image: x\n    healthcheck:\n      test: [CMD, \"true\"]\n  b:\n    image: x\n"
	up := func(t *testing.T, b *Backend, timeout int) <-chan error {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "compose.yaml"), project)
		done := make(chan error, 1)
		go func() {
			_, err := b.Up(context.Background(), compose.UpRequest{Wait: true, Timeout: timeout, LoadOptions: compose.LoadOptions{WorkingDir: dir, ProjectName: "p", ConfigFiles: []string{"compose.yaml"}}})
			done <- err
		}()
		return done
	}
	t.Run("ready", func(t *testing.T) {
		b, cs := newBackend(t)
		backendtest.Run(t, cs, backendtest.Options{Started: t0, NotReady: map[string]bool{"a": true}})
		done := up(t, b, 0)
		waitFor(t, "both pods", func() bool {
			_, errA := b.pods.Pods("p").Get("a-1")
			_, errB := b.pods.Pods("p").Get("b-1")
			return errA == nil && errB == nil
		})
		select {
		case err := <-done:
			t.Fatalf("up --wait returned before a was healthy: %v", err)
		default:
		}
		assert.NilError(t, backendtest.SetReady(context.Background(), cs, "p", "a-1", true))
		select {
		case err := <-done:
			assert.NilError(t, err)
		case <-time.After(30 * time.Second):
			t.Fatal("up --wait did not return once a was healthy")
		}
	})
	t.Run("unhealthy", func(t *testing.T) {
		b, cs := newBackend(t)
		backendtest.Run(t, cs, backendtest.Options{Started: t0.Add(-2 * time.Minute), NotReady: map[string]bool{"a": true}})
		err := <-up(t, b, 0)
		assert.ErrorContains(t, err, "container p-a-1 is unhealthy")
	})
	t.Run("timeout", func(t *testing.T) {
		b, cs := newBackend(t)
		backendtest.Run(t, cs, backendtest.Options{Started: t0, NotReady: map[string]bool{"a": true}})
		err := <-up(t, b, 1)
		assert.ErrorContains(t, err, "waiting for the services to be ready: context deadline exceeded")
	})
}
