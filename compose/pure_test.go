package compose

import (
	"testing"
	"time"

	"github.com/compose-spec/compose-go/v2/types"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/robfig/cron/v3"
	"gotest.tools/v3/assert"
	is "gotest.tools/v3/assert/cmp"
)

func TestScaleDiff(t *testing.T) {
	cases := []struct {
		name           string
		have           []int
		n              int
		create, remove []int
	}{
		{"up from nothing", nil, 3, []int{1, 2, 3}, nil},
		{"up", []int{1}, 3, []int{2, 3}, nil},
		{"down removes the highest first", []int{1, 2, 3, 4}, 2, nil, []int{4, 3}},
		{"to zero", []int{2, 1}, 0, nil, []int{2, 1}},
		{"a gap is filled", []int{1, 3}, 3, []int{2}, nil},
		{"a gap and an extra", []int{1, 4}, 2, []int{2}, []int{4}},
		{"same", []int{1, 2}, 2, nil, nil},
		{"a bad number goes", []int{0, 1}, 1, nil, []int{0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			create, remove := scaleDiff(tc.have, tc.n)
			assert.Check(t, is.DeepEqual(create, tc.create))
			assert.Check(t, is.DeepEqual(remove, tc.remove))
		})
	}
}

func TestDesiredReplicas(t *testing.T) {
	three := 3
	p := &types.Project{Services: types.Services{
		"web":    {Name: "web"},
		"worker": {Name: "worker", Scale: &three},
		"job":    {Name: "job"},
	}}
	jobs := map[string]*JobSpec{"job": {}}
	rec := func(svcs map[string]*ServiceRecord) *DeploymentRecord { return &DeploymentRecord{Services: svcs} }
	cases := []struct {
		name string
		old  *DeploymentRecord
		want map[string]int
	}{
		{"first deploy: the file", nil, map[string]int{"web": 1, "worker": 3, "job": 0}},
		{"a scale the file has not changed since holds", rec(map[string]*ServiceRecord{"worker": {Replicas: 5, FileScale: 3}, "web": {Replicas: 0, FileScale: 1}}), map[string]int{"web": 0, "worker": 5, "job": 0}},
		{"a file that changed scale wins", rec(map[string]*ServiceRecord{"worker": {Replicas: 5, FileScale: 2}}), map[string]int{"web": 1, "worker": 3, "job": 0}},
		{"a former job gets the file's scale", rec(map[string]*ServiceRecord{"web": {Replicas: 0, FileScale: 1, Job: &JobSpec{}}}), map[string]int{"web": 1, "worker": 3, "job": 0}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Check(t, is.DeepEqual(desiredReplicas(p, jobs, tc.old), tc.want))
		})
	}
}

func TestDueTick(t *testing.T) {
	every5, err := ParseSchedule("*/5 * * * *")
	assert.NilError(t, err)
	secs, err := ParseSchedule("*/3 * * * * *")
	assert.NilError(t, err)
	at := func(s string) time.Time {
		tm, err := time.ParseInLocation(time.DateTime, "2026-01-02 "+s, time.Local)
		assert.NilError(t, err)
		return tm
	}
	cases := []struct {
		name      string
		last, now time.Time
		sched     cron.Schedule
		want      time.Time
		due       bool
	}{
		{"not yet", at("10:00:00"), at("10:04:59"), every5, time.Time{}, false},
		{"on the tick", at("10:00:00"), at("10:05:00"), every5, at("10:05:00"), true},
		{"just after", at("10:00:00"), at("10:05:01"), every5, at("10:05:00"), true},
		{"ran already", at("10:05:00"), at("10:05:30"), every5, time.Time{}, false},
		{"missed ticks collapse into the latest", at("10:00:00"), at("10:17:00"), every5, at("10:15:00"), true},
		{"baseline between ticks", at("10:02:30"), at("10:05:00"), every5, at("10:05:00"), true},
		{"seconds", at("10:00:00"), at("10:00:04"), secs, at("10:00:03"), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, due := dueTick(tc.sched, tc.last, tc.now)
			assert.Check(t, is.Equal(due, tc.due))
			assert.Check(t, got.Equal(tc.want), "got %v want %v", got, tc.want)
		})
	}
}

func TestParseJobSpec(t *testing.T) {
	two := 2
	svc := func(x any) types.ServiceConfig {
		return types.ServiceConfig{Name: "j", Extensions: types.Extensions{ExtensionKey: x}}
	}
	cases := []struct {
		name string
		s    types.ServiceConfig
		want *JobSpec
		err  string
	}{
		{"none", types.ServiceConfig{Name: "j"}, nil, ""},
		{"job", svc(map[string]any{"job": true}), &JobSpec{Overlap: OverlapSkip, History: 10}, ""},
		{"job false", svc(map[string]any{"job": false}), nil, ""},
		{"schedule", svc(map[string]any{"schedule": "*/5 * * * *", "overlap": "allow", "history": 3}), &JobSpec{Schedule: "*/5 * * * *", Overlap: OverlapAllow, History: 3}, ""},
		{"every", svc(map[string]any{"schedule": "@every 90s"}), &JobSpec{Schedule: "@every 90s", Overlap: OverlapSkip, History: 10}, ""},
		{"bad schedule", svc(map[string]any{"schedule": "every five minutes"}), nil, `service "j": x-berth.schedule:`},
		{"bad field count", svc(map[string]any{"schedule": "* * *"}), nil, "x-berth.schedule"},
		{"bad overlap", svc(map[string]any{"job": true, "overlap": "queue"}), nil, `x-berth.overlap must be "skip" or "allow"`},
		{"unknown key", svc(map[string]any{"job": true, "retries": 3}), nil, `unknown key "retries"`},
		{"job not bool", svc(map[string]any{"job": "yes"}), nil, "x-berth.job: invalid value yes"},
		{"not a mapping", svc("job"), nil, "x-berth must be a mapping"},
		{"overlap alone", svc(map[string]any{"overlap": "skip"}), nil, "neither job: true nor a schedule"},
		{"replicas", types.ServiceConfig{Name: "j", Scale: &two, Extensions: types.Extensions{ExtensionKey: map[string]any{"job": true}}}, nil, "a job has no replicas"},
		{"history zero", svc(map[string]any{"job": true, "history": 0}), nil, "x-berth.history"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseJobSpec(tc.s)
			if tc.err != "" {
				assert.Check(t, is.ErrorContains(err, tc.err))
				return
			}
			assert.NilError(t, err)
			assert.Check(t, is.DeepEqual(got, tc.want))
		})
	}
}

func TestPullPolicy(t *testing.T) {
	now := time.Date(2026, 1, 2, 10, 0, 0, 0, time.UTC)
	fresh := &image.InspectResponse{Metadata: image.Metadata{LastTagTime: now.Add(-time.Hour)}}
	old := &image.InspectResponse{Metadata: image.Metadata{LastTagTime: now.Add(-48 * time.Hour)}}
	cases := []struct {
		policy string
		local  *image.InspectResponse
		pull   bool
		err    string
	}{
		{"", nil, true, ""},
		{"", fresh, false, ""},
		{"missing", nil, true, ""},
		{"if_not_present", fresh, false, ""},
		{"always", fresh, true, ""},
		{"never", nil, false, ""},
		{"build", nil, false, ""},
		{"daily", fresh, false, ""},
		{"daily", old, true, ""},
		{"daily", nil, true, ""},
		{"weekly", old, false, ""},
		{"every_12h", fresh, false, ""},
		{"every_30m", fresh, true, ""},
		{"alwys", nil, false, `invalid pull_policy "alwys"`},
		{"xalwaysx", nil, false, `invalid pull_policy "xalwaysx"`},
		{"every_", nil, false, "invalid pull_policy"},
		{"every_soon", nil, false, "invalid pull_policy"},
	}
	for _, tc := range cases {
		t.Run(tc.policy, func(t *testing.T) {
			policy, every, err := parsePullPolicy(types.ServiceConfig{Name: "s", PullPolicy: tc.policy})
			if tc.err != "" {
				assert.Check(t, is.ErrorContains(err, tc.err))
				return
			}
			assert.NilError(t, err)
			assert.Check(t, is.Equal(mustPull(policy, every, tc.local, now), tc.pull))
		})
	}
}

func TestRepoDigest(t *testing.T) {
	img := &image.InspectResponse{RepoDigests: []string{"busybox@sha256:aa", "127.0.0.1:5000/kr/busybox@sha256:bb"}}
	assert.Check(t, is.Equal(repoDigest(img, "127.0.0.1:5000/kr/busybox:latest"), "127.0.0.1:5000/kr/busybox@sha256:bb"))
	assert.Check(t, is.Equal(repoDigest(img, "docker.io/library/busybox:1"), "busybox@sha256:aa"))
	assert.Check(t, is.Equal(repoDigest(img, "other:latest"), ""))
}

func TestStateSummary(t *testing.T) {
	assert.Check(t, is.Equal(stateSummary(nil), "empty"))
	d := Deployment{Project: "p", Services: []Service{{Name: "a", Replicas: []Replica{{Number: 1, State: "running", Health: "healthy"}, {Number: 2, State: "exited"}}}}}
	st := statusOf(&DeploymentRecord{Project: "p", Origin: OriginBerth, Services: map[string]*ServiceRecord{"a": {Replicas: 3}, "j": {Job: &JobSpec{}}}}, d)
	assert.Check(t, is.Equal(st.Status, "exited(1), running(1)"))
	assert.Assert(t, is.Len(st.Services, 2))
	assert.Check(t, is.Equal(st.Services[0].Desired, 3))
	assert.Check(t, is.Equal(st.Services[0].Running, 1))
	assert.Check(t, is.Equal(st.Services[0].Health, "healthy"))
	assert.Check(t, st.Services[1].Job != nil)
}

func TestFailedStart(t *testing.T) {
	st := func(s container.ContainerState, code, restarts int) *container.InspectResponse {
		return &container.InspectResponse{State: &container.State{Status: s, ExitCode: code}, RestartCount: restarts}
	}
	for _, tc := range []struct {
		name string
		c    *container.InspectResponse
		want bool
	}{
		{"running", st(container.StateRunning, 0, 0), false},
		{"exited 0: a one-shot", st(container.StateExited, 0, 0), false},
		{"exited 3", st(container.StateExited, 3, 0), true},
		{"dead", st(container.StateDead, 0, 0), true},
		{"between restarts", st(container.StateRestarting, 2, 1), true},
		{"restarted already", st(container.StateRunning, 0, 2), true},
		{"no state", &container.InspectResponse{}, false},
	} {
		assert.Check(t, is.Equal(failedStart(tc.c), tc.want), tc.name)
	}
}
