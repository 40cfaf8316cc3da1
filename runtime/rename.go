package runtime

import (
	"context"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/events"
)

// Rename gives a container a new name.
func (s *Service) Rename(ctx context.Context, oldName, newName string) error {
	if oldName == "" || newName == "" {
		return errdefs.ErrInvalidArgument.WithMessage("Neither old nor new names may be empty")
	}
	c, err := s.ready(ctx, oldName)
	if err != nil {
		return err
	}
	newName = "/" + strings.TrimPrefix(newName, "/")
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.rec.Name
	if old == newName {
		return errdefs.ErrInvalidArgument.WithMessage("Renaming a container with the same name as its current name")
	}
	s.mu.Lock()
	if err := s.reserveName(newName, c.rec.ID); err != nil {
		s.mu.Unlock()
		return err
	}
	delete(s.names, old)
	s.mu.Unlock()
	c.rec.Name = newName
	if err := s.save(c); err != nil {
		s.mu.Lock()
		delete(s.names, newName)
		s.names[old] = c.rec.ID
		s.mu.Unlock()
		c.rec.Name = old
		return err
	}
	s.event(c.rec, events.ActionRename, map[string]string{"oldName": old})
	return nil
}
