package main

import "fmt"

// buildBackend builds the daemon of the backend the flags select.
func buildBackend(cfg *config) (*daemon, error) {
	if cfg.Kubeconfig != "" {
		return buildKube(cfg)
	}
	if cfg.KubeContext != "" || cfg.KubeNamespacePrefix != "" {
		return nil, fmt.Errorf("--kube-context and --kube-namespace-prefix need --kubeconfig")
	}
	return build(cfg)
}
