package registry

import (
	"context"
	"sync"
)

// Removals answered before they are done. A --rm container's end is
// answered (its CLI's wait released) once the container is gone from every
// list; the deletion of its writable layer (~4 ms: the store's records of
// containers, layers and mounts rewritten) follows. Until it has, the
// layer store still has a container on the image, which nobody may see:
// the lookups of an image's users (rmi, prune, `images` with container
// counts) wait for the removals begun before them.

// pendingRemovals are the root filesystem removals begun and not finished.
type pendingRemovals struct {
	mu   sync.Mutex
	byID map[string]chan struct{} // closed when the removal has ended
	// waiting, set by tests, is told how many removals a wait waits for
	waiting func(n int)
}

// begin records containerID's removal as pending until end is called.
func (p *pendingRemovals) begin(containerID string) (end func()) {
	done := make(chan struct{})
	p.mu.Lock()
	if p.byID == nil {
		p.byID = map[string]chan struct{}{}
	}
	p.byID[containerID] = done
	p.mu.Unlock()
	return func() {
		p.mu.Lock()
		if p.byID[containerID] == done {
			delete(p.byID, containerID)
		}
		p.mu.Unlock()
		close(done)
	}
}

// wait returns once every removal begun before it was called has ended.
func (p *pendingRemovals) wait() {
	p.mu.Lock()
	chans := make([]chan struct{}, 0, len(p.byID))
	for _, ch := range p.byID {
		chans = append(chans, ch)
	}
	waiting := p.waiting
	p.mu.Unlock()
	if waiting != nil {
		waiting(len(chans))
	}
	for _, ch := range chans {
		<-ch
	}
}

// BeginRemoveRootfs begins the removal of containerID's root filesystem
// for a caller that answers before it is done: from now on, whoever asks
// which containers use an image waits for it. The returned function
// removes it (as RemoveRootfs); it must be called once.
func (s *Service) BeginRemoveRootfs(containerID string) (remove func(context.Context) error) {
	end := s.removals.begin(containerID)
	return func(ctx context.Context) error {
		defer end()
		return s.RemoveRootfs(ctx, containerID)
	}
}
