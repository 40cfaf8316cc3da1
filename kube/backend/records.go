package backend

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/berthd/berth/kube"
)

// annotationRecords is the annotation on a compose service's StatefulSet
// that keeps berthd's records of its created and stopped replicas (the
// containers with no pod: Docker has them, Kubernetes does not), so that a
// berthd restart does not forget them. JSON: ordinal -> replicaRecord.
const annotationRecords = "berth/replica-records"

// replicaRecord is one kept record.
type replicaRecord struct {
	State    string    `json:"state"` // "created" or "stopped"
	ExitCode int32     `json:"exitCode,omitempty"`
	Created  time.Time `json:"created"`
	Started  time.Time `json:"started,omitzero"`
	Finished time.Time `json:"finished,omitzero"`
}

// recordTimeout bounds one write of a service's records.
const recordTimeout = 30 * time.Second

// recordsChanged writes a compose service's records to its StatefulSet
// after one of them changed, in the background: the value is computed
// under persistMu at the time of the write, so the last write holds the
// newest records whatever order the writers ran in.
func (b *Backend) recordsChanged(k svcKey) {
	b.persistWG.Add(1)
	go func() {
		defer b.persistWG.Done()
		b.persistMu.Lock()
		defer b.persistMu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), recordTimeout)
		defer cancel()
		_ = b.persistRecords(ctx, k) // the StatefulSet may be gone (down, rm of the last container)
	}()
}

// persistRecords merge-patches the annotation by manager berth (an
// update, not an apply: berth compose up's applies leave it alone); no
// record removes it.
func (b *Backend) persistRecords(ctx context.Context, k svcKey) error {
	recs := map[string]replicaRecord{}
	b.mu.Lock()
	for id, l := range b.local {
		if _, tmp := b.replacing[id]; tmp || !isReplica(l.pod) || keyOf(l.pod) != k {
			continue // a recreate's new container is the replica's after its rename
		}
		st := podState(l.pod, b.now())
		r := replicaRecord{Created: l.pod.CreationTimestamp.UTC()}
		switch l.state {
		case localCreated:
			r.State = "created"
		case localStopped:
			r.State, r.ExitCode, r.Started, r.Finished = "stopped", int32(st.exitCode), st.started.UTC(), st.finished.UTC()
		default:
			continue // starting: its pod is coming
		}
		recs[strconv.Itoa(ordinal(l.pod))] = r
	}
	b.mu.Unlock()
	var value any // JSON null removes the annotation
	if len(recs) > 0 {
		data, err := json.Marshal(recs)
		if err != nil {
			return err
		}
		value = string(data)
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]any{annotationRecords: value}}})
	if err != nil {
		return err
	}
	_, err = b.c.AppsV1().StatefulSets(k.ns).Patch(ctx, k.service, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return fromAPI(err)
}

// restoreRecords reads the kept records back at start-up (Sync): a created
// replica is its StatefulSet's pod for the ordinal, as create made it; a
// stopped one that pod, exited with its code. A replica whose pod exists
// is the pod's, unless its ordinal is above the set's replicas: that pod
// is being scaled away (a kill just before the restart), and the record
// is what stays when it has gone.
func (b *Backend) restoreRecords(ctx context.Context) error {
	sets, err := b.c.AppsV1().StatefulSets(metav1.NamespaceAll).List(ctx, metav1.ListOptions{LabelSelector: ownedSelector})
	if err != nil {
		return fmt.Errorf("kube backend: read the containers' records: %w", fromAPI(err))
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.restorePlainRecords(ctx); err != nil {
		return err
	}
	for i := range sets.Items {
		ss := &sets.Items[i]
		v := ss.Annotations[annotationRecords]
		if v == "" {
			continue
		}
		var recs map[string]replicaRecord
		if err := json.Unmarshal([]byte(v), &recs); err != nil {
			return fmt.Errorf("kube backend: StatefulSet %s/%s: annotation %s: %w", ss.Namespace, ss.Name, annotationRecords, err)
		}
		for n, r := range recs {
			ord, err := strconv.Atoi(n)
			if err != nil || ord < 1 {
				continue
			}
			p := kube.ReplicaPod(ss, ord, r.Created)
			id := containerID(p)
			if _, err := b.pods.Pods(p.Namespace).Get(p.Name); err == nil && ord <= wantReplicas(ss) {
				continue // the pod is the replica; one above the set's replicas is on its way out
			}
			switch r.State {
			case "created":
				b.local[id] = &local{pod: p, state: localCreated}
			case "stopped":
				p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: mainContainer(p).Name, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(r.Started)}}}}
				b.local[id] = &local{pod: stoppedCopy(p, r.ExitCode, r.Finished), state: localStopped}
				k := keyOf(p)
				if b.down[k] == nil {
					b.down[k] = map[int]bool{}
				}
				b.down[k][ord] = true
			}
		}
	}
	return nil
}
