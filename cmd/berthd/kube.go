//go:build berth_kube

package main

import (
	"context"
	"fmt"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/berthd/berth/engine"
	"github.com/berthd/berth/kube"
	kubebackend "github.com/berthd/berth/kube/backend"
	"github.com/berthd/berth/sysinfo"
)

// kubeSyncTimeout bounds the informers' first list at start-up.
const kubeSyncTimeout = time.Minute

// buildKube serves the Engine API from a cluster (--kubeconfig): the
// containers and deployment routes from the Kubernetes backend, /info and
// /version describing it, every other endpoint 501.
func buildKube(cfg *config) (_ *daemon, retErr error) {
	rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: cfg.Kubeconfig}
	restCfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: cfg.KubeContext}).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("--kubeconfig %s: %w", cfg.Kubeconfig, err)
	}
	restCfg.UserAgent = "berthd/" + sysinfo.Version
	cs, err := kubebackend.NewClient(restCfg)
	if err != nil {
		return nil, err
	}
	kb, err := kubebackend.New(kubebackend.Deps{Client: cs, Options: kube.Options{NamespacePrefix: cfg.KubeNamespacePrefix}})
	if err != nil {
		return nil, err
	}
	lv, err := newLive(cfg)
	if err != nil {
		return nil, err
	}
	ctx, stop := context.WithCancel(context.Background())
	d := &daemon{live: lv, closers: []func() error{func() error { stop(); return nil }}}
	defer func() {
		if retErr != nil {
			d.close()
		}
	}()
	// the informers run on the daemon's context (until it closes); only the
	// wait for their first list is bounded: Sync with a timeout context
	// stopped them when start-up returned, and berthd never saw a pod made
	// after it (found by make e2e-kube)
	synced := make(chan error, 1)
	go func() { synced <- kb.Sync(ctx) }()
	select {
	case err := <-synced:
		if err != nil {
			return nil, err
		}
	case <-time.After(kubeSyncTimeout):
		return nil, fmt.Errorf("--kubeconfig %s: the pod informer did not sync in %v", cfg.Kubeconfig, kubeSyncTimeout)
	}
	d.server = engine.New(engine.Config{APIVersion: apiVersion, MinAPIVersion: minAPIVersion}, kb.Routers(kubebackend.Version{Berth: sysinfo.Version, APIVersion: apiVersion, MinAPIVersion: minAPIVersion})...)
	return d, nil
}
