package buildkit

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/berthd/berth/builder/buildkit/wire"
	"github.com/containerd/containerd/v2/core/remotes/docker"
	controlapi "github.com/moby/buildkit/api/services/control"
	"github.com/moby/buildkit/util/resolver"
	resolverconfig "github.com/moby/buildkit/util/resolver/config"
	"github.com/moby/moby/api/types/build"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

// DiskUsage reports the build cache for GET /system/df (and docker
// builder du). A daemon that never built reports an empty cache without
// starting BuildKit.
func (s *Service) DiskUsage(ctx context.Context) (*build.DiskUsage, error) {
	du := &build.DiskUsage{Items: []build.CacheRecord{}}
	if !s.started() {
		return du, nil
	}
	ctl, err := s.controller()
	if err != nil {
		return nil, err
	}
	resp, err := ctl.DiskUsage(ctx, &controlapi.DiskUsageRequest{})
	if err != nil {
		return nil, fmt.Errorf("error getting build cache usage: %w", err)
	}
	for _, r := range resp.Record {
		du.TotalCount++
		du.TotalSize += r.Size
		if r.InUse {
			du.ActiveCount++
		}
		if !r.InUse && !r.Shared {
			du.Reclaimable += r.Size
		}
		rec := build.CacheRecord{
			ID: r.ID, Parents: r.Parents, Type: r.RecordType, Description: r.Description,
			InUse: r.InUse, Shared: r.Shared, Size: r.Size, UsageCount: int(r.UsageCount),
		}
		if r.CreatedAt != nil {
			rec.CreatedAt = r.CreatedAt.AsTime()
		}
		if r.LastUsedAt != nil {
			t := r.LastUsedAt.AsTime()
			rec.LastUsedAt = &t
		}
		du.Items = append(du.Items, rec)
	}
	return du, nil
}

// PruneOptions are what POST /build/prune asks for.
type PruneOptions = wire.PruneOptions

// CacheFields are the record fields a prune may filter on.
var CacheFields = wire.CacheFields

// filter is Fields in BuildKit's filter syntax: id by prefix, the others
// by equality, all of them at once.
func pruneFilter(o PruneOptions) []string {
	if len(o.Fields) == 0 {
		return nil
	}
	keys := make([]string, 0, len(o.Fields))
	for k := range o.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		switch v := o.Fields[k]; {
		case v == "":
			parts = append(parts, k)
		case k == "id":
			parts = append(parts, k+"~="+v)
		default:
			parts = append(parts, k+"=="+v)
		}
	}
	return []string{strings.Join(parts, ",")}
}

// Prune removes build cache records as POST /build/prune asks and reports
// what went.
func (s *Service) Prune(ctx context.Context, o PruneOptions) (*build.CachePruneReport, error) {
	report := &build.CachePruneReport{CachesDeleted: []string{}}
	if !s.started() {
		return report, nil
	}
	ctl, err := s.controller()
	if err != nil {
		return nil, err
	}
	stream := &pruneStream{ctx: ctx}
	err = ctl.Prune(&controlapi.PruneRequest{
		All: o.All, KeepDuration: int64(o.KeepDuration), Filter: pruneFilter(o),
		ReservedSpace: o.ReservedSpace, MaxUsedSpace: o.MaxUsedSpace, MinFreeSpace: o.MinFreeSpace,
	}, stream)
	if err != nil {
		return nil, fmt.Errorf("failed to prune build cache: %w", err)
	}
	for _, r := range stream.records {
		report.CachesDeleted = append(report.CachesDeleted, r.ID)
		report.SpaceReclaimed += uint64(max(r.Size, 0))
	}
	return report, nil
}

// pruneStream collects what the controller's Prune sends, as a gRPC
// server stream would carry it to a client.
type pruneStream struct {
	ctx     context.Context
	records []*controlapi.UsageRecord
}

var _ controlapi.Control_PruneServer = (*pruneStream)(nil)

func (p *pruneStream) Send(r *controlapi.UsageRecord) error {
	p.records = append(p.records, r)
	return nil
}
func (p *pruneStream) SetHeader(metadata.MD) error  { return nil }
func (p *pruneStream) SendHeader(metadata.MD) error { return nil }
func (p *pruneStream) SetTrailer(metadata.MD)       {}
func (p *pruneStream) Context() context.Context     { return p.ctx }
func (p *pruneStream) SendMsg(m any) error {
	if r, ok := m.(*controlapi.UsageRecord); ok {
		return p.Send(r)
	}
	return nil
}
func (p *pruneStream) RecvMsg(any) error { return nil }

var _ grpc.ServerStream = (*pruneStream)(nil)

// registryHosts reaches registries as berth's pulls do: the hosts of
// --insecure-registry (and loopback) over plain HTTP or without TLS
// verification, the others over verified HTTPS.
func (s *Service) registryHosts(host string) ([]docker.RegistryHost, error) {
	c := resolverconfig.RegistryConfig{}
	if s.d.Images.IsInsecure(host) {
		t := true
		c.Insecure, c.PlainHTTP = &t, &t
	}
	return resolver.NewRegistryConfig(map[string]resolverconfig.RegistryConfig{host: c})(host)
}
