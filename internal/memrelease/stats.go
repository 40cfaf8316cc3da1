package memrelease

import (
	"fmt"
	"runtime"
)

// Breakdown describes where the process's Go memory is, in MB: the heap
// in use and free but held, stacks, span and GC metadata, the rest the
// runtime obtained. What the kernel counts as the process's anonymous RSS
// is about the sum less what was released.
func Breakdown() string {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	mb := func(b uint64) float64 { return float64(b) / (1 << 20) }
	return fmt.Sprintf("heap in use %.1f (objects %.1f, %d), heap free held %.1f, released %.1f, stacks %.1f, spans %.1f, gc %.1f, other %.1f, obtained %.1f MB",
		mb(m.HeapInuse), mb(m.HeapAlloc), m.HeapObjects, mb(m.HeapIdle-m.HeapReleased), mb(m.HeapReleased),
		mb(m.StackSys), mb(m.MSpanSys+m.MCacheSys), mb(m.GCSys), mb(m.OtherSys+m.BuckHashSys), mb(m.Sys))
}
