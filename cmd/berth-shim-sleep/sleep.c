/*
 * berth-shim-sleep is the form a container's monitor (berth-shim) takes while
 * the container is quiet: a few pages of memory where the Go monitor holds
 * most of a megabyte (its runtime's floor). The shim executes it in its own
 * process (cmd/berth-shim/sleep.go), so the pid, the children (the
 * container's init), the subreaper bit, the session and every descriptor
 * without close-on-exec stay as they were. It waits until one of the
 * descriptors it watches needs the shim (output to log, a client gone, the
 * init's exit: readable or hung up) and executes the shim again from the
 * descriptor of its binary; the shim reads the rest of its state from
 * <state-dir>/sleep.json. It reads none of the container's output, so
 * nothing is lost between the two: what woke it is still there.
 *
 * It answers the two requests that reach a quiet container's monitor when
 * berthd restarts, so that a restart does not wake every monitor at once:
 * "state" (running, with the init's and its own pid) and "wait" (held, and
 * handed to the shim when it wakes). Any other request wakes the shim,
 * which reads it itself: the keeper only peeks at it (MSG_PEEK). The
 * requests are matched byte for byte as berthd's client writes them
 * (runtime/shim/proto; TestSleeperRequestsMatchProto keeps them in step).
 *
 *   argv: the shim's own ("berth-shim <state-dir>"), passed on unchanged
 *   env:  _BERTH_SHIM_SLEEP="<exe-fd> <listener-fd> <init-pid> <n> <fd>... <fd>..."
 *         (the shim's binary opened O_PATH, its listening socket, the
 *         container's init, the count of held waits that follow, then the
 *         descriptors to watch); replaced for
 *         the shim by _BERTH_SHIM_WAKE=1, _BERTH_SHIM_CONNS="<fd> ..."
 *         (accepted connections whose request the shim must read) and
 *         _BERTH_SHIM_WAITERS="<fd> ..." (held waits), the rest kept
 *
 * If the shim cannot be executed again, it retries every second (saying so
 * on stderr, the shim's log): the container keeps running meanwhile.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#define SLEEP_ENV "_BERTH_SHIM_SLEEP="
#define MAX_FDS 64
#define MAX_CONNS 64
#define MAX_ENV 512

/* berthd's requests, as runtime/shim's client marshals them */
#define STATE_REQ "{\"V\":1,\"Op\":\"state\"}\n"
#define WAIT_REQ "{\"V\":1,\"Op\":\"wait\"}\n"

extern char **environ;

enum kind { WATCHED, LISTENER, PENDING, WAITER };

static struct conn {
	int fd;
	enum kind kind;
} conns[MAX_CONNS];
static int nconns;
static int ep;

static int parse_fds(const char *s, int *fds, int max)
{
	int n = 0;
	while (*s) {
		char *end;
		long v;
		while (*s == ' ')
			s++;
		if (!*s)
			break;
		errno = 0;
		v = strtol(s, &end, 10);
		if (errno || end == s || v < 0 || v > 1 << 22 || n == max)
			return -1;
		fds[n++] = (int)v;
		s = end;
	}
	return n;
}

static int watch(int fd, enum kind kind)
{
	struct epoll_event ev;
	if (nconns == MAX_CONNS)
		return -1;
	memset(&ev, 0, sizeof ev);
	ev.events = EPOLLIN;
	ev.data.u32 = (unsigned)nconns;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
		fprintf(stderr, "berth-shim-sleep: watch fd %d: %s\n", fd, strerror(errno));
		return -1;
	}
	conns[nconns].fd = fd;
	conns[nconns].kind = kind;
	nconns++;
	return 0;
}

static void drop(struct conn *c)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
}

/* serve looks at a pending connection's request: 1 when it needs the shim,
 * 0 when answered, held or still to come. */
static int serve(struct conn *c, int init_pid)
{
	char buf[256];
	ssize_t n = recv(c->fd, buf, sizeof buf, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0)
		return errno == EAGAIN || errno == EINTR ? 0 : (drop(c), 0);
	if (n == 0) {
		drop(c); /* the client left before asking */
		return 0;
	}
	if (!memchr(buf, '\n', (size_t)n))
		return (size_t)n == sizeof buf; /* the rest is to come */
	if ((size_t)n == strlen(STATE_REQ) && memcmp(buf, STATE_REQ, (size_t)n) == 0) {
		char out[128];
		int len = snprintf(out, sizeof out, "{\"Pid\":%d,\"ShimPid\":%d,\"Status\":\"running\"}\n", init_pid, (int)getpid());
		if (recv(c->fd, buf, (size_t)n, MSG_DONTWAIT) == n)
			send(c->fd, out, (size_t)len, MSG_DONTWAIT | MSG_NOSIGNAL);
		drop(c);
		return 0;
	}
	if ((size_t)n == strlen(WAIT_REQ) && memcmp(buf, WAIT_REQ, (size_t)n) == 0) {
		if (recv(c->fd, buf, (size_t)n, MSG_DONTWAIT) != n)
			return 1;
		c->kind = WAITER; /* answered by the shim at the exit */
		return 0;
	}
	return 1;
}

static char *fd_list(const char *name, enum kind kind)
{
	size_t cap = strlen(name) + 2 + (size_t)nconns * 12, len;
	char *s = malloc(cap);
	if (!s)
		return NULL;
	len = (size_t)snprintf(s, cap, "%s=", name);
	for (int i = 0; i < nconns; i++)
		if (conns[i].fd >= 0 && conns[i].kind == kind)
			len += (size_t)snprintf(s + len, cap - len, "%s%d", len > strlen(name) + 1 ? " " : "", conns[i].fd);
	return s;
}

int main(int argc, char **argv)
{
	static char *envp[MAX_ENV + 4];
	int fds[MAX_FDS], n = 0, ne = 0, i, wake = 0, listener, init_pid;
	const char *spec = NULL;

	(void)argc;
	for (char **e = environ; *e; e++) {
		if (strncmp(*e, SLEEP_ENV, strlen(SLEEP_ENV)) == 0)
			spec = *e + strlen(SLEEP_ENV);
		else if (ne < MAX_ENV)
			envp[ne++] = *e;
	}
	if (!spec || (n = parse_fds(spec, fds, MAX_FDS)) < 4 || fds[3] > n - 4) {
		/* Not started by a shim: there is no binary to go back to. */
		fputs("berth-shim-sleep: started without " SLEEP_ENV "\n", stderr);
		return 2;
	}
	listener = fds[1];
	init_pid = fds[2];
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0 || watch(listener, LISTENER) < 0)
		wake = 1;
	/* held waits: a client that leaves is let go (berthd killed closes
	 * them all at once, and that must not wake every monitor) */
	for (i = 4; !wake && i < 4 + fds[3]; i++)
		if (watch(fds[i], WAITER) < 0)
			wake = 1;
	for (; !wake && i < n; i++)
		if (watch(fds[i], WATCHED) < 0)
			wake = 1; /* a descriptor we cannot watch: wake now rather than miss it */

	while (!wake) {
		struct epoll_event evs[16];
		int k = epoll_wait(ep, evs, 16, -1);
		if (k < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		/* the shim's own business first: no answer for a container
		 * whose init has just exited */
		for (i = 0; i < k; i++)
			if (conns[evs[i].data.u32].kind == WATCHED)
				wake = 1;
		for (i = 0; !wake && i < k; i++) {
			struct conn *c = &conns[evs[i].data.u32];
			if (c->fd < 0)
				continue;
			switch (c->kind) {
			case WATCHED:
				break;
			case WAITER:
				drop(c); /* the client left (nothing else is sent on a wait) */
				break;
			case PENDING:
				wake |= serve(c, init_pid);
				break;
			case LISTENER: {
				int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK);
				if (fd < 0)
					break;
				if (watch(fd, PENDING) < 0) {
					close(fd);
					wake = 1; /* full: the shim takes the next one */
					break;
				}
				wake |= serve(&conns[nconns - 1], init_pid);
				break;
			}
			}
		}
	}
	envp[ne++] = "_BERTH_SHIM_WAKE=1";
	envp[ne++] = fd_list("_BERTH_SHIM_CONNS", PENDING);
	envp[ne++] = fd_list("_BERTH_SHIM_WAITERS", WAITER);
	envp[ne] = NULL;
	for (;;) {
		syscall(SYS_execveat, fds[0], "", argv, envp, AT_EMPTY_PATH);
		fprintf(stderr, "berth-shim-sleep: wake the shim: %s\n", strerror(errno));
		sleep(1);
	}
}
