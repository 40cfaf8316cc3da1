/*
 * berth-nsexec starts one process inside a running container for berth-shim
 * (cmd/berth-shim/nsexec.go), doing what `runc exec` (runc 1.1) does to the
 * process, without runc's start-up and without compiling the container's
 * seccomp profile again: the shim hands over the filter the kernel already
 * holds for the container's init. Anything this program cannot do exactly
 * as runc would is a "setup" error, and the shim then runs `runc exec`.
 *
 *   berth-nsexec filter <pid>  writes the seccomp filters of <pid> (taken
 *                              with PTRACE_SECCOMP_GET_FILTER) to stdout
 *   berth-nsexec exec          starts a process; fds: 0-2 its stdio, 3 the
 *                              config (read to EOF), 4 the status pipe,
 *                              5 a pidfd of the container's init, 6 the
 *                              console socket (terminal) or /dev/null,
 *                              7 the sealed memfd this program runs from
 *
 * The exec sequence follows runc's: join the init's namespaces (setns on the
 * pidfd, so a recycled pid can never be joined), fork into the pid
 * namespace (and the v2 cgroup), the parent reports the child's pid and
 * exits (the child is re-parented to the shim, a subreaper); the child
 * joins the v1 cgroups and the cgroup namespace, then, in runc's order:
 * setsid, rlimits, session keyring, console,
 * no_new_privs, seccomp (before the user change without no_new_privs),
 * working directory, bounding set, user and groups, capabilities, the
 * executable's lookup (Go's exec.LookPath rules), seccomp (with
 * no_new_privs), execve.
 *
 * It must run from a sealed memfd (the shim copies it there for each exec):
 * a container whose executable is "#!/proc/self/exe" would otherwise be
 * handed this binary, writable on the host (CVE-2019-5736).
 */
#define _GNU_SOURCE
#include "nsexec.h"

static pid_t fork_into(int cgfd, int *into);

/* ---------------------------------------------------------------- config */

/* The config is a sequence of records "<tag><value>\0". */
static void parse_config(struct config *c, char *buf, size_t n);

static void read_config(struct config *c)
{
	char *buf;
	ssize_t n = read_all(FD_CONFIG, &buf, 16 << 20);
	if (n < 0)
		setup_fail("read config");
	close(FD_CONFIG);
	parse_config(c, buf, n);
}

/* parse_config reads the n bytes of records at buf (NUL-terminated, as
 * read_all leaves it); c points into buf. */
static void parse_config(struct config *c, char *buf, size_t n)
{
	memset(c, 0, sizeof *c);
	for (char *p = buf; p < buf + n;) {
		char tag = *p++;
		char *v = p;
		p += strlen(p) + 1;
		unsigned long long x, y, z;
		switch (tag) {
		case 'a':
			push(&c->args, &c->nargs, v);
			break;
		case 'e':
			push(&c->env, &c->nenv, v);
			break;
		case 'G':
			push(&c->addgids, &c->naddgids, v);
			break;
		case 'x':
			push(&c->cgroups, &c->ncgroups, v);
			break;
		case 'y':
			c->cgroup2 = v;
			break;
		case 'c':
			c->cwd = v;
			break;
		case 'k':
			c->keyring = v;
			break;
		case 'f':
			c->filter = v;
			break;
		case 'u':
		case 'g':
			if (parse_ulong(v, &x) || x > INT_MAX)
				setup_fail("bad config: %c%s", tag, v);
			if (tag == 'u')
				c->uid = x;
			else
				c->gid = x;
			break;
		case 'B':
		case 'E':
		case 'P':
		case 'I':
		case 'A': {
			static const char sets[] = "BEPIA";
			if (parse_ulong(v, &x) || x >= MAXCAP)
				setup_fail("bad config: %c%s", tag, v);
			c->caps[strchr(sets, tag) - sets] |= 1ULL << x;
			break;
		}
		case 'L':
			if (parse_ulong(v, &x) || x >= MAXCAP)
				setup_fail("bad config: L%s", v);
			c->lastcap = x;
			break;
		case 'n':
			c->nnp = 1;
			break;
		case 't':
			c->terminal = 1;
			break;
		case 'h':
		case 'w':
			if (parse_ulong(v, &x) || x > 65535)
				setup_fail("bad config: %c%s", tag, v);
			if (tag == 'h')
				c->rows = x;
			else
				c->cols = x;
			break;
		case 'o': {
			int neg = *v == '-';
			if (parse_ulong(v + neg, &x) || x > (unsigned long long)INT_MAX + neg)
				setup_fail("bad config: o%s", v);
			c->has_oom = 1;
			c->oom = neg ? (int)-(long long)x : (int)x;
			break;
		}
		case 's':
			if (parse_ulong(v, &x))
				setup_fail("bad config: s%s", v);
			c->nsflags = x;
			break;
		case 'r': {
			char *a = v, *b = strchr(a, ' '), *d = b ? strchr(b + 1, ' ') : NULL;
			if (!b || !d || c->nrlim == 32)
				setup_fail("bad config: r%s", v);
			*b++ = 0;
			*d++ = 0;
			if (parse_ulong(a, &x) || x > INT_MAX || parse_ulong(b, &y) || parse_ulong(d, &z))
				setup_fail("bad config: rlimit");
			c->rlim[c->nrlim].res = x;
			c->rlim[c->nrlim].soft = y;
			c->rlim[c->nrlim].hard = z;
			c->nrlim++;
			break;
		}
		default:
			setup_fail("bad config tag %c", tag);
		}
	}
	if (c->nargs == 0)
		setup_fail("no args");
}

/* ---------------------------------------------------------------- caps */

static int capget_eff(uint64_t *eff)
{
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2];
	if (syscall(SYS_capget, &h, d) < 0)
		return -1;
	*eff = d[0].effective | ((uint64_t)d[1].effective << 32);
	return 0;
}

/* apply_bounding drops what the bounding set does not hold, as
 * gocapability's Apply(BOUNDS) does: only while CAP_SETPCAP is effective,
 * ignoring EINVAL (a capability this kernel lacks). */
static void apply_bounding(struct config *c)
{
	uint64_t eff;
	if (capget_eff(&eff) < 0)
		setup_fail("capget");
	if (!(eff & (1ULL << CAP_SETPCAP)))
		return;
	for (int i = 0; i <= c->lastcap; i++) {
		if (c->caps[CAP_B] & (1ULL << i))
			continue;
		if (prctl(PR_CAPBSET_DROP, i, 0, 0, 0) < 0 && errno != EINVAL)
			setup_fail("drop bounding capability %d", i);
	}
}

static void apply_caps(struct config *c)
{
	apply_bounding(c);
	struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct d[2];
	for (int i = 0; i < 2; i++) {
		d[i].effective = c->caps[CAP_E] >> (32 * i);
		d[i].permitted = c->caps[CAP_P] >> (32 * i);
		d[i].inheritable = c->caps[CAP_I] >> (32 * i);
	}
	if (syscall(SYS_capset, &h, d) < 0)
		setup_fail("capset");
	/* gocapability ignores every error here: an ambient capability that
	 * is not permitted and inheritable is silently not raised. */
	for (int i = 0; i <= c->lastcap; i++)
		prctl(PR_CAP_AMBIENT, (c->caps[CAP_A] & (1ULL << i)) ? PR_CAP_AMBIENT_RAISE : PR_CAP_AMBIENT_LOWER, i, 0, 0);
}

/* ---------------------------------------------------------------- console */

static void setup_console(struct config *c)
{
	int master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (master < 0)
		setup_fail("open /dev/ptmx");
	int n, unlock = 0;
	if (ioctl(master, TIOCGPTN, &n) < 0)
		setup_fail("TIOCGPTN");
	if (ioctl(master, TIOCSPTLCK, &unlock) < 0)
		setup_fail("unlockpt");
	struct termios t;
	if (ioctl(master, TCGETS, &t) < 0)
		setup_fail("TCGETS");
	if (c->rows && c->cols) {
		struct winsize ws = {.ws_row = c->rows, .ws_col = c->cols};
		if (ioctl(master, TIOCSWINSZ, &ws) < 0)
			setup_fail("TIOCSWINSZ");
	}
	char slave[64];
	snprintf(slave, sizeof slave, "/dev/pts/%d", n);
	/* send the master as runc does over its console socket */
	char name[] = "/dev/ptmx";
	struct iovec iov = {name, sizeof name - 1};
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	memset(&u, 0, sizeof u);
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &master, sizeof(int));
	if (sendmsg(FD_CONSOLE, &mh, 0) < 0)
		setup_fail("send console");
	close(FD_CONSOLE);
	/* The peer of this very master, whatever the container mounted at
	 * /dev/pts; by path where the kernel cannot (before 4.13), as runc. No
	 * O_NOCTTY: as a session leader we take it as our terminal. An open(2)
	 * on a 64-bit kernel adds O_LARGEFILE: so do we, for the same flags. */
	int fd = ioctl(master, TIOCGPTPEER, O_RDWR | KERNEL_O_LARGEFILE);
	if (fd < 0 && (errno == EINVAL || errno == ENOTTY))
		fd = open(slave, O_RDWR);
	if (fd < 0)
		setup_fail("open %s", slave);
	for (int i = 0; i < 3; i++)
		if (dup3(fd, i, 0) < 0)
			setup_fail("dup3");
	if (fd > 2)
		close(fd);
	close(master);
	if (ioctl(0, TIOCSCTTY, 0) < 0)
		setup_fail("TIOCSCTTY");
}

/* ---------------------------------------------------------------- exec */

/* reset_signals leaves the signal state runc's init (a Go program) leaves
 * its exec'd process: no signal blocked, none ignored. */
static void reset_signals(void)
{
	for (int sig = 1; sig < NSIG; sig++) {
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		struct sigaction sa;
		if (sigaction(sig, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN) {
			sa.sa_handler = SIG_DFL;
			sigaction(sig, &sa, NULL);
		}
	}
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

/* The cgroups: the v1 hierarchies' tasks files and the v2 cgroup's
 * directory and cgroup.procs, opened on the host before setns. */
struct cgroups {
	int *tasks, v2dir, v2procs, v2done;
};

/* join_cgroups moves the child (a single thread) into the v1 cgroups by
 * writing "0" to their tasks files, which spares the kernel's global
 * threadgroup lock, and with it an RCU grace period (5-25 ms) per exec that
 * writing a pid to cgroup.procs costs. The v2 cgroup it was born in
 * (CLONE_INTO_CGROUP), or joins through cgroup.procs where the kernel
 * cannot. */
static void join_cgroups(struct config *c, struct cgroups *cg)
{
	if (cg->v2dir >= 0)
		close(cg->v2dir); /* a host directory: not a moment longer */
	for (int i = 0; i < c->ncgroups; i++) {
		if (write(cg->tasks[i], "0", 1) != 1)
			setup_fail("join cgroup %s", c->cgroups[i]);
		close(cg->tasks[i]);
	}
	if (cg->v2procs >= 0) {
		if (!cg->v2done && write(cg->v2procs, "0", 1) != 1)
			setup_fail("join cgroup %s", c->cgroup2);
		close(cg->v2procs);
	}
	/* runc joins the cgroup namespace before the cgroups; the namespace
	 * is the same either way, and joining it last keeps clone3's check
	 * (both cgroups inside the caller's namespace) on the host's. */
	if ((c->nsflags & CLONE_NEWCGROUP) && setns(FD_PIDFD, CLONE_NEWCGROUP) < 0)
		setup_fail("setns cgroup");
	close(FD_PIDFD);
}

static void __attribute__((noreturn)) child(struct config *c, struct filters *f, struct cgroups *cg, int go)
{
	char b;
	ssize_t r;
	do
		r = read(go, &b, 1);
	while (r < 0 && errno == EINTR);
	if (r != 1)
		_exit(1); /* the parent failed and said so */
	close(go);
	join_cgroups(c, cg);

	if (setsid() < 0)
		setup_fail("setsid");
	if (setuid(0) < 0 || setgid(0) < 0)
		setup_fail("setuid/setgid 0");
	/* runc's init is a Go program: its runtime raises the soft limit of
	 * open files to the hard one, and its exec'd process keeps that
	 * unless the process sets its own. */
	struct rlimit nofile;
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != nofile.rlim_max) {
		nofile.rlim_cur = nofile.rlim_max;
		setrlimit(RLIMIT_NOFILE, &nofile);
	}
	for (int i = 0; i < c->nrlim; i++) {
		struct rlimit rl = {c->rlim[i].soft, c->rlim[i].hard};
		if (setrlimit(c->rlim[i].res, &rl) < 0)
			setup_fail("setrlimit %d", c->rlim[i].res);
	}
	if (c->keyring && syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, c->keyring) < 0 && errno != ENOSYS)
		setup_fail("join session keyring");
	if (c->terminal)
		setup_console(c);
	if (c->nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		setup_fail("no_new_privs");
	if (f->n && !c->nnp)
		apply_filters(f);

	/* finalizeNamespace */
	int chdir_later = 0;
	if (c->cwd && *c->cwd && chdir(c->cwd) < 0) {
		if (errno != EACCES && errno != EPERM)
			setup_fail("chdir %s", c->cwd);
		chdir_later = 1;
	}
	apply_bounding(c);
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		setup_fail("keepcaps");
	setup_user(c);
	if (chdir_later && chdir(c->cwd) < 0)
		setup_fail("chdir %s", c->cwd);
	char wd[PATH_MAX + 1];
	long wl = syscall(SYS_getcwd, wd, sizeof wd);
	if (wl <= 0 || wd[0] != '/') {
		errno = ENOENT;
		setup_fail("working directory outside the container");
	}
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
		setup_fail("keepcaps");
	apply_caps(c);

	char *name = lookpath(c);
	int e = runc_eaccess(name);
	if (e)
		fail_msg(MSG_EACCESS, e, name);
	if (f->n && c->nnp)
		apply_filters(f);
	reset_signals();
	/* Only stdio and the status pipe (close-on-exec) may remain. */
	syscall(SYS_close_range, 3, FD_STATUS - 1, 0);
	syscall(SYS_close_range, FD_STATUS + 1, ~0U, 0);
	execve(name, c->args, c->env);
	/* runc's init prints this on the process's stderr once runc has
	 * reported the start, and exits 1 */
	e = errno;
	dprintf(2, "exec %s: %s\n", name, go_errstr(e));
	_exit(1);
}

static void check_sealed(void)
{
	int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		setup_fail("open /proc/self/exe");
	int seals = fcntl(fd, F_GET_SEALS);
	close(fd);
	if (seals < 0 || !(seals & F_SEAL_WRITE)) {
		errno = EPERM;
		setup_fail("not running from a sealed memfd");
	}
}

static int read_lastcap(void)
{
	char buf[16] = "";
	int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		setup_fail("open cap_last_cap");
	ssize_t r = read(fd, buf, sizeof buf - 1);
	close(fd);
	unsigned long long v;
	buf[r > 0 ? r : 0] = 0;
	if (r > 0 && buf[r - 1] == '\n')
		buf[r - 1] = 0;
	if (parse_ulong(buf, &v) || v >= MAXCAP) {
		errno = EINVAL;
		setup_fail("cap_last_cap %s", buf);
	}
	return v;
}

static int exec_main(void)
{
	/* run as /proc/self/fd/7, the process would be called "7" until it
	 * execs (ps, docker top) */
	prctl(PR_SET_NAME, "berth-nsexec", 0, 0, 0);
	if (fcntl(FD_STATUS, F_SETFD, FD_CLOEXEC) < 0)
		return 1;
	check_sealed();
	close(FD_SELF);
	struct config c;
	read_config(&c);
	if (!c.terminal)
		close(FD_CONSOLE);
	else if (fcntl(FD_CONSOLE, F_SETFD, FD_CLOEXEC) < 0)
		setup_fail("console fd");
	c.lastcap = read_lastcap();

	struct filters f = {0};
	if (c.filter)
		load_filter_file(c.filter, &f);
	struct cgroups cg = {calloc(c.ncgroups + 1, sizeof(int)), -1, -1, 0};
	if (!cg.tasks)
		setup_fail("out of memory");
	for (int i = 0; i < c.ncgroups; i++) {
		char path[PATH_MAX];
		snprintf(path, sizeof path, "%s/tasks", c.cgroups[i]);
		if ((cg.tasks[i] = open(path, O_WRONLY | O_CLOEXEC)) < 0)
			setup_fail("open %s", path);
	}
	if (c.cgroup2) {
		char path[PATH_MAX];
		snprintf(path, sizeof path, "%s/cgroup.procs", c.cgroup2);
		if ((cg.v2dir = open(c.cgroup2, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 ||
		    (cg.v2procs = open(path, O_WRONLY | O_CLOEXEC)) < 0)
			setup_fail("open %s", path);
	}
	if (c.has_oom) {
		char v[16];
		int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
		snprintf(v, sizeof v, "%d", c.oom);
		if (fd < 0 || write(fd, v, strlen(v)) < 0)
			setup_fail("oom_score_adj");
		close(fd);
	}
	/* Nothing in the container may look at us (/proc/<pid>/...) while we
	 * hold host fds and privileges. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		setup_fail("set non-dumpable");
	unsigned long ns = c.nsflags & ~(unsigned long)CLONE_NEWCGROUP;
	if (ns && setns(FD_PIDFD, ns) < 0)
		setup_fail("setns");

	int sync[2];
	if (pipe2(sync, O_CLOEXEC) < 0)
		setup_fail("pipe");
	pid_t pid = fork_into(cg.v2dir, &cg.v2done);
	if (pid < 0)
		setup_fail("fork");
	if (pid == 0) {
		close(sync[1]);
		child(&c, &f, &cg, sync[0]);
	}
	close(sync[0]);
	/* The shim learns the pid before the child may go on, so it waits for
	 * it whatever happens next. */
	send_msg(MSG_PID, pid, NULL);
	if (write(sync[1], "g", 1) != 1) {
		kill(pid, SIGKILL);
		setup_fail("start child");
	}
	return 0;
}

struct clone_args_v2 {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;
};

/* fork_into forks, the child born in the cgroup v2 directory cgfd when the
 * kernel can (clone3 with CLONE_INTO_CGROUP, Linux 5.7): no migration.
 * *into says whether it did. The child must not rely on glibc's idea of
 * its thread id (no raise, abort or pthreads): clone3 has no wrapper. */
static pid_t fork_into(int cgfd, int *into)
{
	*into = 0;
	if (cgfd >= 0) {
		struct clone_args_v2 a = {.flags = 0x200000000ULL /* CLONE_INTO_CGROUP */, .exit_signal = SIGCHLD, .cgroup = (uint64_t)cgfd};
		long r = syscall(435 /* clone3 */, &a, sizeof a);
		if (r >= 0) {
			*into = 1;
			return r;
		}
		if (errno != ENOSYS && errno != EINVAL && errno != E2BIG && errno != EOPNOTSUPP)
			return -1;
	}
	return fork();
}

int main(int argc, char **argv)
{
	if (argc == 2 && !strcmp(argv[1], "exec"))
		return exec_main();
	if (argc == 3 && !strcmp(argv[1], "filter"))
		return filter_main(argv[2]);
	if (argc == 2 && !strcmp(argv[1], "errors")) {
		/* for the shim's tests: the error strings must be Go's */
		for (int i = 1; i < 134; i++)
			printf("%d %s\n", i, go_errstr(i));
		return 0;
	}
	fprintf(stderr, "usage: berth-nsexec exec | filter <pid>\n");
	return 2;
}

/* Go's syscall.Errno strings (runc prints its exec error with them). */
