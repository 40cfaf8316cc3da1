package runtime

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/berthd/berth/internal/errclass"
	"github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/sirupsen/logrus"
)

// Legacy links (--link) on the default bridge, as dockerd keeps them: the
// linking container (the parent) names the linked one (the child) by an
// alias; the link has a name of its own, "/<parent>/<alias>", that resolves
// to the child and shows in the child's Names. berth records the child's ID
// per alias (Record.Links), so the link survives renames of either side,
// and derives every name from the current container names.
//
// On user-defined networks links are only names the embedded DNS answers
// for the parent (network.AttachRequest.Links); dockerd registers no legacy
// link there, and neither does berth.

const defaultBridge = "bridge"

// resolveLinks turns HostConfig.Links into alias -> child ID for a container
// being created, with dockerd's errors (registerLinks): a missing container
// is invalid input (a 404 would make the CLI try to pull the image), and a
// container on the host's network cannot be linked.
func (s *Service) resolveLinks(hc *container.HostConfig) (map[string]string, error) {
	if len(hc.Links) == 0 || hc.NetworkMode.IsUserDefined() {
		return nil, nil
	}
	out := map[string]string{}
	for _, l := range hc.Links {
		name, alias, err := parseLink(l)
		if err != nil {
			return nil, err
		}
		child, err := s.linkTarget(name)
		if err != nil {
			return nil, err
		}
		child.mu.Lock()
		id, hostNet := child.rec.ID, child.rec.HostConfig.NetworkMode.IsHost()
		child.mu.Unlock()
		if hostNet {
			return nil, errdefs.ErrInvalidArgument.WithMessage("conflicting options: host type networking can't be used with links. This would result in undefined behavior")
		}
		out[alias] = id
	}
	return out, nil
}

// linkTarget finds the container a link names, following --network
// container:<other> to the container that owns the network, as dockerd does.
func (s *Service) linkTarget(name string) (*ctr, error) {
	for hops := 0; ; hops++ {
		c, err := s.lookup(name)
		if err != nil {
			if errdefs.IsNotFound(err) {
				err = errclass.Wrap(errdefs.ErrInvalidArgument, "", err)
			}
			return nil, fmt.Errorf("could not get container for %s: %w", name, err)
		}
		c.mu.Lock()
		mode := c.rec.HostConfig.NetworkMode
		c.mu.Unlock()
		if !mode.IsContainer() || hops > 16 {
			return c, nil
		}
		name = mode.ConnectedContainer()
	}
}

// lookupLink resolves a link name, "/<parent>/<alias>", to the linked
// container. Call with no container lock held.
func (s *Service) lookupLink(name string) (*ctr, error) {
	full := "/" + strings.TrimPrefix(name, "/")
	parentName, alias := path.Split(full)
	parentName = strings.TrimSuffix(parentName, "/")
	if parentName == "" || alias == "" {
		return nil, notFound(name)
	}
	parent, err := s.lookup(parentName)
	if err != nil {
		return nil, notFound(name)
	}
	childID, ok := parent.snapshot().Links[alias]
	if !ok {
		return nil, notFound(name)
	}
	s.mu.RLock()
	child := s.byID[childID]
	s.mu.RUnlock()
	if child == nil {
		return nil, notFound(name)
	}
	return child, nil
}

// RemoveLink is DELETE /containers/<parent>/<alias>?link=1: the parent no
// longer links the child; both containers stay. dockerd's words and
// (unclassified) errors.
func (s *Service) RemoveLink(ctx context.Context, name string) error {
	if _, err := s.lookup(name); err != nil {
		return err
	}
	full := "/" + strings.TrimPrefix(name, "/")
	parentName, alias := path.Split(full)
	if parentName == "/" {
		return errors.New("Conflict, cannot remove the default link name of the container")
	}
	parentName = strings.TrimSuffix(parentName, "/")
	parent, err := s.lookup(parentName)
	if err != nil {
		return fmt.Errorf("Cannot get parent %s for link name %s", parentName, full)
	}
	parent.mu.Lock()
	defer parent.mu.Unlock()
	rec := parent.rec
	if _, ok := rec.Links[alias]; !ok {
		return nil
	}
	oldLinks, oldHC := rec.Links, rec.HostConfig
	rec.Links = maps.Clone(rec.Links)
	delete(rec.Links, alias)
	hc := *rec.HostConfig
	hc.Links = slices.DeleteFunc(slices.Clone(hc.Links), func(l string) bool {
		_, a, err := parseLink(l)
		return err == nil && a == alias
	})
	rec.HostConfig = &hc
	if err := s.save(parent); err != nil {
		rec.Links, rec.HostConfig = oldLinks, oldHC
		return err
	}
	return nil
}

// legacyLink is what one link of a starting container gives it.
type legacyLink struct {
	// hosts is the child's /etc/hosts line in the parent: its address and
	// the alias, its hostname and (unless the alias is the name) its name.
	hosts string
	env   []string
}

// legacyLinks resolves the links of a container being started, after its
// networks are up, as dockerd's setupLinkedContainers and addLegacyLinks
// do: every child must run and be on the default bridge. Call with c.mu
// held; it takes the children's locks (parent before child, always).
func (s *Service) legacyLinks(rec *Record) ([]legacyLink, error) {
	if len(rec.Links) == 0 || rec.Endpoints[defaultBridge] == nil {
		return nil, nil
	}
	var out []legacyLink
	for _, alias := range slices.Sorted(maps.Keys(rec.Links)) {
		name := rec.Name + "/" + alias
		s.mu.RLock()
		child := s.byID[rec.Links[alias]]
		s.mu.RUnlock()
		if child == nil {
			continue // removed since; dockerd drops such links at its next start
		}
		child.mu.Lock()
		l, err := linkOf(child.rec, name, alias, child.running())
		child.mu.Unlock()
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, nil
}

func linkOf(child *Record, name, alias string, running bool) (legacyLink, error) {
	if !running {
		return legacyLink{}, fmt.Errorf("Cannot link to a non running container: %s AS %s", child.Name, name)
	}
	ep := child.Endpoints[defaultBridge]
	if ep == nil || !ep.IPAddress.IsValid() {
		return legacyLink{}, fmt.Errorf("Cannot link to %s, as it does not belong to the default network", child.Name)
	}
	ip := ep.IPAddress.Unmap().String()
	names := alias + " " + child.Config.Hostname
	if alias != strings.TrimPrefix(child.Name, "/") {
		names += " " + strings.TrimPrefix(child.Name, "/")
	}
	return legacyLink{
		hosts: ip + "\t" + names + "\n",
		env:   linkEnv(ip, name, child.Config.Env, child.Config.ExposedPorts),
	}, nil
}

func linksEnv(links []legacyLink) []string {
	var env []string
	for _, l := range links {
		env = append(env, l.env...)
	}
	return env
}

// updateLinkParents points the /etc/hosts lines of the running containers
// that link child at its new address, as dockerd does when a linked
// container starts again. It runs in the background, holding no lock of
// child's, so that the lock order stays parent before child.
func (s *Service) updateLinkParents(childID string) {
	s.bgGo(func() {
		for _, p := range s.all() {
			p.mu.Lock()
			if p.running() && slices.Contains(slices.Collect(maps.Values(p.rec.Links)), childID) {
				s.refreshLinkHosts(p)
			}
			p.mu.Unlock()
		}
	})
}

// refreshLinkHosts rewrites the address of every link alias in a running
// parent's /etc/hosts in place (the file is bind-mounted, so the container
// sees it at once). Lines the container wrote itself stay. Call with p.mu held.
func (s *Service) refreshLinkHosts(p *ctr) {
	file := filepath.Join(s.containerDir(p.rec.ID), "hosts")
	old, err := os.ReadFile(file)
	if err != nil {
		return
	}
	data := bytes.Clone(old)
	for _, alias := range slices.Sorted(maps.Keys(p.rec.Links)) {
		s.mu.RLock()
		child := s.byID[p.rec.Links[alias]]
		s.mu.RUnlock()
		if child == nil || child == p {
			continue
		}
		child.mu.Lock()
		l, err := linkOf(child.rec, p.rec.Name+"/"+alias, alias, child.running())
		child.mu.Unlock()
		if err == nil {
			data = replaceHostsLine(data, alias, l.hosts)
		}
	}
	if bytes.Equal(old, data) {
		return
	}
	if err := overwriteInPlace(file, data); err != nil {
		logrus.WithError(err).Warnf("update /etc/hosts of %s", p.rec.ID[:12])
	}
}

// overwriteInPlace replaces a bind-mounted file's content without a moment
// in which it is empty: the new bytes go over the old ones first and the
// tail is cut after (os.WriteFile truncates first, and a process reading
// /etc/hosts then saw an empty file). A rename cannot be used: the
// container's bind mount holds the old inode.
func overwriteInPlace(file string, data []byte) error {
	f, err := os.OpenFile(file, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if _, err := f.WriteAt(data, 0); err != nil {
		f.Close()
		return err
	}
	if err := f.Truncate(int64(len(data))); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// replaceHostsLine replaces the line whose first name is alias, or appends
// line when there is none.
func replaceHostsLine(data []byte, alias, line string) []byte {
	lines := bytes.SplitAfter(data, []byte("\n"))
	for i, l := range lines {
		f := strings.Fields(string(l))
		if len(f) > 1 && f[1] == alias {
			if _, err := netip.ParseAddr(f[0]); err == nil {
				lines[i] = []byte(line)
				return bytes.Join(lines, nil)
			}
		}
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		data = append(data, '\n')
	}
	return append(data, line...)
}

// inspectLinks is HostConfig.Links as dockerd's inspect shows it:
// "/<child>:/<parent>/<alias>", from the current names of both sides.
func (s *Service) inspectLinks(rec *Record) []string {
	var out []string
	for _, alias := range slices.Sorted(maps.Keys(rec.Links)) {
		s.mu.RLock()
		child := s.byID[rec.Links[alias]]
		s.mu.RUnlock()
		if child == nil {
			continue
		}
		name := rec.Name // the parent itself (a copy the caller holds)
		if v := child.snapshot(); v.ID != rec.ID {
			name = v.Name
		}
		out = append(out, name+":"+rec.Name+"/"+alias)
	}
	return out
}

// linkNamesByChild maps each linked container's ID to the names its links
// give it ("/<parent>/<alias>"), from copies of every record, for `docker
// ps` Names.
func linkNamesByChild(recs []*Record) map[string][]string {
	out := map[string][]string{}
	for _, r := range recs {
		for alias, child := range r.Links {
			out[child] = append(out[child], r.Name+"/"+alias)
		}
	}
	for _, names := range out {
		sort.Strings(names)
	}
	return out
}
