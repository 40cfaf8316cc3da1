//go:build !berth_kube

package main

import "errors"

// The Kubernetes backend (client-go and every k8s.io/api type) is linked
// only into bin/berthd-kube (`make berthd-kube`, build tag berth_kube): in
// berthd it would add ~24 MB to the idle resident size (56 -> 80 MB) for
// hosts that never use it.
func buildKube(*config) (*daemon, error) {
	return nil, errors.New("--kubeconfig: this berthd is built without the Kubernetes backend; use bin/berthd-kube (make berthd-kube)")
}
