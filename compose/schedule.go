package compose

import (
	"time"

	"github.com/robfig/cron/v3"
)

// Schedules are cron expressions parsed by robfig/cron: the five standard
// fields (minute hour day-of-month month day-of-week), optionally a sixth,
// leading, seconds field, descriptors (@hourly, @daily, @every 90s) and a
// CRON_TZ= prefix; times are the daemon's local time otherwise.
var cronParser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// ParseSchedule parses a job's schedule.
func ParseSchedule(spec string) (cron.Schedule, error) {
	return cronParser.Parse(spec)
}

// maxCatchUp bounds the walk over missed ticks (a per-second schedule and a
// daemon down for a day is 86400 of them; the rest are skipped at once).
const maxCatchUp = 100000

// dueTick is the latest tick of sched in (last, now], if any. The ticks
// missed before it (a daemon that was down) are collapsed into it: a job
// runs once for them, never once per missed tick, and never twice for one
// tick, since last is the tick that ran last.
func dueTick(sched cron.Schedule, last, now time.Time) (time.Time, bool) {
	next := sched.Next(last)
	if next.IsZero() || next.After(now) {
		return time.Time{}, false
	}
	for range maxCatchUp {
		n := sched.Next(next)
		if n.IsZero() || n.After(now) {
			break
		}
		next = n
	}
	return next, true
}

// Clock is time as the scheduler and the supervisor see it; tests inject
// one they move by hand.
type Clock interface {
	Now() time.Time
	// After fires once d has passed.
	After(d time.Duration) <-chan time.Time
}

// RealClock is the wall clock.
type RealClock struct{}

// Now is time.Now.
func (RealClock) Now() time.Time { return time.Now() }

// After is time.After.
func (RealClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
