package backend

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/containerd/errdefs"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/berthd/berth/kube"
)

// configMapRecords is the ConfigMap in the default namespace that keeps
// berthd's records of plain `docker run` containers that have no pod
// (created, or stopped): a compose replica's are kept on its StatefulSet
// (records.go); a plain container has none. Key: the container id; value:
// JSON plainRecord.
const configMapRecords = "berth-containers"

// plainRecord is one kept record: the Pod as berthd presents it (for a
// stopped one with its exited status) and its state.
type plainRecord struct {
	State string      `json:"state"` // "created" or "stopped"
	Pod   *corev1.Pod `json:"pod"`
}

// plainRecordsChanged writes the plain containers' records in the
// background, as recordsChanged does the replicas'.
func (b *Backend) plainRecordsChanged() {
	b.persistWG.Add(1)
	go func() {
		defer b.persistWG.Done()
		b.persistMu.Lock()
		defer b.persistMu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
		defer cancel()
		_ = b.persistPlainRecords(ctx) // best effort: the next change writes them all again
	}()
}

// persistPlainRecords applies the ConfigMap with every plain record
// (server-side, manager berth: a record no longer there is removed), and
// the default namespace first when it is not there yet.
func (b *Backend) persistPlainRecords(ctx context.Context) error {
	data := map[string]string{}
	b.mu.Lock()
	for id, l := range b.local {
		if isReplica(l.pod) || l.state == localStarting {
			continue
		}
		r := plainRecord{State: "created", Pod: l.pod}
		if l.state == localStopped {
			r.State = "stopped"
		}
		v, err := json.Marshal(r)
		if err != nil {
			b.mu.Unlock()
			return err
		}
		data[id] = string(v)
	}
	b.mu.Unlock()
	cm := &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: configMapRecords, Namespace: b.defNS, Labels: map[string]string{kube.LabelManagedBy: kube.ManagedBy}},
		Data:       data,
	}
	_, _, err := b.apply(ctx, cm)
	if errdefs.IsNotFound(err) {
		ns := &corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}, ObjectMeta: metav1.ObjectMeta{Name: b.defNS, Labels: map[string]string{kube.LabelManagedBy: kube.ManagedBy}}}
		if _, _, err := b.apply(ctx, ns); err != nil {
			return err
		}
		_, _, err = b.apply(ctx, cm)
	}
	return err
}

// restorePlainRecords reads the kept records back at start-up (Sync); a
// record whose pod exists is the pod's. Called with b.mu held.
func (b *Backend) restorePlainRecords(ctx context.Context) error {
	cm, err := b.c.CoreV1().ConfigMaps(b.defNS).Get(ctx, configMapRecords, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("kube backend: read the containers' records: %w", fromAPI(err))
	}
	for id, v := range cm.Data {
		var r plainRecord
		if err := json.Unmarshal([]byte(v), &r); err != nil || r.Pod == nil {
			return fmt.Errorf("kube backend: ConfigMap %s/%s: record %s: %v", b.defNS, configMapRecords, id, err)
		}
		if containerID(r.Pod) != id {
			continue
		}
		if _, err := b.pods.Pods(r.Pod.Namespace).Get(r.Pod.Name); err == nil {
			continue
		}
		switch r.State {
		case "created":
			b.local[id] = &local{pod: r.Pod, state: localCreated}
		case "stopped":
			b.local[id] = &local{pod: r.Pod, state: localStopped}
		}
	}
	return nil
}
