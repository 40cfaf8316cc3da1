package runtime

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"math/big"
	"regexp"
	"strings"

	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
)

var validName = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// Candidate is a container offered to the NameFallback.
type Candidate struct {
	ID      string
	Name    string // without "/"
	Labels  map[string]string
	Running bool
}

// NameFallback resolves names that Docker's own rules do not know, such as
// compose's <project>-<service>-<n>. It returns ErrNotFound when nothing
// matches and a classified error listing the candidates when several do.
type NameFallback interface {
	Resolve(name string, candidates []Candidate) (id string, err error)
}

// NoFallback knows no extra names.
type NoFallback struct{}

func (NoFallback) Resolve(name string, _ []Candidate) (string, error) {
	return "", errdefs.ErrNotFound.WithMessage("No such container: " + name)
}

func newID() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

func notFound(name string) error {
	return errdefs.ErrNotFound.WithMessage("No such container: " + name)
}

// lookup finds a container. The order, first match wins:
//
//  1. the exact name (with or without "/") or the full id;
//  2. the fallback's names (compose: <project>-<service>-<n>,
//     <project>_<service>_<n>, the bare service name), whose ambiguity is an
//     error, not a reason to look further;
//  3. a unique id prefix (Docker's rule).
//
// Compose names come before id prefixes because service names such as db,
// be, cafe or a1 are hex: with Docker's order, `docker exec db` would be
// decided by whether some container's random id happens to start with "db".
// A prefix still reaches every container whose id it starts, unless a
// compose name says otherwise.
func (s *Service) lookup(name string) (*ctr, error) {
	if name == "" {
		return nil, notFound(name)
	}
	if strings.Contains(strings.TrimPrefix(name, "/"), "/") {
		// no container name has a "/": this is a link's name
		return s.lookupLink(name)
	}
	s.mu.RLock()
	if c, ok := s.byID[name]; ok {
		s.mu.RUnlock()
		return c, nil
	}
	if id, ok := s.names["/"+strings.TrimPrefix(name, "/")]; ok {
		c := s.byID[id]
		s.mu.RUnlock()
		return c, nil
	}
	s.mu.RUnlock()
	c, err := s.lookupFallback(name)
	if err == nil || !errdefs.IsNotFound(err) {
		return c, err
	}
	return s.lookupPrefix(name)
}

// lookupFallback asks the name fallback (compose names).
func (s *Service) lookupFallback(name string) (*ctr, error) {
	all := s.all()
	cands := make([]Candidate, 0, len(all))
	for _, c := range all {
		rec := c.snapshot() // a reader: never waits for an operation
		cands = append(cands, Candidate{
			ID: rec.ID, Name: strings.TrimPrefix(rec.Name, "/"),
			Labels: rec.Config.Labels, Running: rec.State.Status == container.StateRunning,
		})
	}
	id, err := s.d.Names.Resolve(name, cands)
	if err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if c, ok := s.byID[id]; ok {
		return c, nil
	}
	return nil, notFound(name)
}

// lookupPrefix finds the one container whose id starts with name.
func (s *Service) lookupPrefix(name string) (*ctr, error) {
	if !isHexPrefix(name) {
		return nil, notFound(name)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var match *ctr
	for id, c := range s.byID {
		if strings.HasPrefix(id, name) {
			if match != nil {
				return nil, errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("multiple IDs found with provided prefix: %s", name))
			}
			match = c
		}
	}
	if match == nil {
		return nil, notFound(name)
	}
	return match, nil
}

func isHexPrefix(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}

// reserveName claims name for id; call with s.mu held.
func (s *Service) reserveName(name, id string) error {
	if !validName.MatchString(name) {
		return errdefs.ErrInvalidArgument.WithMessage(fmt.Sprintf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", strings.TrimPrefix(name, "/")))
	}
	name = "/" + strings.TrimPrefix(name, "/")
	if other, ok := s.names[name]; ok && other != id {
		return errdefs.ErrConflict.WithMessage(fmt.Sprintf("Conflict. The container name %q is already in use by container %q. You have to remove (or rename) that container to be able to reuse that name.", name, other))
	}
	s.names[name] = id
	return nil
}

// generateName picks a free adjective_noun name like dockerd does.
func (s *Service) generateName() string {
	for i := 0; ; i++ {
		n := "/" + adjectives[randInt(len(adjectives))] + "_" + nouns[randInt(len(nouns))]
		if i > 10 {
			n += fmt.Sprint(randInt(100))
		}
		if _, taken := s.names[n]; !taken {
			return n
		}
	}
}

func randInt(n int) int {
	v, err := rand.Int(rand.Reader, big.NewInt(int64(n)))
	if err != nil {
		return 0
	}
	return int(v.Int64())
}

var adjectives = []string{
	"agile", "bold", "brave", "bright", "calm", "clever", "cosy", "crisp", "daring", "eager",
	"fair", "fancy", "gentle", "glad", "happy", "hardy", "jolly", "keen", "kind", "lively",
	"lucid", "merry", "modest", "nimble", "noble", "patient", "plucky", "proud", "quiet", "quick",
	"rapid", "sharp", "shiny", "silent", "sleek", "steady", "stoic", "sunny", "swift", "tidy",
	"trusty", "vivid", "warm", "wise", "witty", "zealous",
}

// nouns are harbours, docks and sea-going things: berth's namesakes.
var nouns = []string{
	"anchor", "barge", "beacon", "bollard", "buoy", "cabin", "capstan", "cleat", "compass", "cutter",
	"davit", "dinghy", "dock", "ferry", "galley", "gangway", "harbour", "hawser", "helm", "hull",
	"jetty", "keel", "ketch", "lantern", "lighthouse", "marina", "mast", "mooring", "pier", "pilot",
	"quay", "rudder", "schooner", "sextant", "skiff", "slipway", "sloop", "spar", "tender", "tiller",
	"tugboat", "wharf", "winch", "yawl",
}
