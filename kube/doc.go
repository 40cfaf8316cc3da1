// Package kube translates a loaded compose project (compose-go's model, as
// compose.Load returns it) into the Kubernetes objects the Kubernetes backend
// of berthd applies: a Namespace per project, a StatefulSet and a headless
// Service per service, Services for aliases and published ports, and
// PersistentVolumeClaims for named volumes. The translation is pure (no
// cluster, no clock, no randomness): the same project gives the same objects,
// byte for byte, so that server-side apply of a second `up` changes nothing.
// What it cannot express faithfully it refuses with ErrNotImplemented rather
// than drop. docs/kubernetes.md is the mapping table.
package kube
