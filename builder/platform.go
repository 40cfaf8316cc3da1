package builder

import (
	"fmt"

	"github.com/berthd/berth/internal/errclass"
	"github.com/containerd/errdefs"
	"github.com/containerd/platforms"
)

// checkPlatform refuses a --platform that is not a platform, in
// containerd's words as dockerd does, and one that berth cannot build
// for: its steps run on this host.
func checkPlatform(spec string) error {
	if spec == "" {
		return nil
	}
	p, err := platforms.Parse(spec)
	if err != nil {
		return errclass.Wrap(errdefs.ErrInvalidArgument, "", err)
	}
	if !platforms.Only(platforms.DefaultSpec()).Match(p) {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("berth's builder builds for %s only, not %s", platforms.DefaultString(), platforms.Format(p)))
	}
	return nil
}
