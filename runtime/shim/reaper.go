package shim

import (
	"errors"
	"sync"
	"syscall"

	"github.com/sirupsen/logrus"
)

// A shim is berthd's child from its start until berthd exits (then it is
// init's): berthd starts it directly, in its own session, instead of
// through a launcher that forks it away (a second exec of the shim, ~10 ms
// of every start). The reaper collects the shims that exit while berthd
// runs, so none stays a zombie: one thread waits on their pidfds with
// epoll, with no goroutine or blocked thread per shim.
type reaper struct {
	once sync.Once
	epfd int
	err  error
	mu   sync.Mutex
	byFD map[int32]int // pidfd -> pid
}

var shims = &reaper{}

// watch takes ownership of pidfd and reaps pid once it exits.
func (r *reaper) watch(pid, pidfd int) {
	r.once.Do(r.start)
	if r.err == nil && pidfd >= 0 {
		r.mu.Lock()
		r.byFD[int32(pidfd)] = pid
		r.mu.Unlock()
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(pidfd)}
		err := syscall.EpollCtl(r.epfd, syscall.EPOLL_CTL_ADD, pidfd, &ev)
		if err == nil {
			return
		}
		r.mu.Lock()
		delete(r.byFD, int32(pidfd))
		r.mu.Unlock()
		logrus.WithError(err).Warn("shim reaper: epoll add")
	}
	// no pidfd (a kernel before 5.3) or epoll failed: a thread waits
	if pidfd >= 0 {
		syscall.Close(pidfd)
	}
	go reap(pid)
}

// reap waits for pid (a child of this process) and collects it.
func reap(pid int) {
	var ws syscall.WaitStatus
	for {
		if _, err := syscall.Wait4(pid, &ws, 0, nil); !errors.Is(err, syscall.EINTR) {
			return
		}
	}
}

func (r *reaper) start() {
	r.byFD = map[int32]int{}
	r.epfd, r.err = syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if r.err != nil {
		logrus.WithError(r.err).Warn("shim reaper: epoll")
		return
	}
	go r.loop()
}

func (r *reaper) loop() {
	events := make([]syscall.EpollEvent, 64)
	for {
		n, err := syscall.EpollWait(r.epfd, events, -1)
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			logrus.WithError(err).Error("shim reaper: epoll wait")
			return
		}
		for _, ev := range events[:n] {
			r.mu.Lock()
			pid, ok := r.byFD[ev.Fd]
			delete(r.byFD, ev.Fd)
			r.mu.Unlock()
			if !ok {
				continue
			}
			// readable: the process has exited (a pidfd's only event),
			// so this wait returns at once
			reap(pid)
			_ = syscall.EpollCtl(r.epfd, syscall.EPOLL_CTL_DEL, int(ev.Fd), nil)
			syscall.Close(int(ev.Fd))
		}
	}
}
