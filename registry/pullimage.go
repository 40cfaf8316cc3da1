package registry

import (
	"context"

	"github.com/moby/moby/api/types/jsonstream"
)

// PullImage pulls ref as POST /images/create does, with the daemon's
// credentials and no progress to show (compose.ImagePuller: deployments
// pull what they lack). Its errors are Pull's, whether found before the
// stream would start or during it.
func (s *Service) PullImage(ctx context.Context, ref string) error {
	return s.Pull(ctx, PullOptions{FromImage: ref}, func() Output { return quiet{} })
}

// quiet is an output nobody reads; an error in the stream is the pull's.
type quiet struct{}

func (quiet) Send(v any) error {
	if m, ok := v.(jsonstream.Message); ok && m.Error != nil {
		return m.Error
	}
	return nil
}
