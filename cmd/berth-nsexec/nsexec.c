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
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#ifndef PTRACE_SECCOMP_GET_FILTER
#define PTRACE_SECCOMP_GET_FILTER 0x420c
#endif
#ifndef PTRACE_SECCOMP_GET_METADATA
#define PTRACE_SECCOMP_GET_METADATA 0x420d
#endif
#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_RAISE 2
#define PR_CAP_AMBIENT_LOWER 3
#endif
#ifndef F_GET_SEALS
#define F_GET_SEALS 1034
#define F_SEAL_WRITE 0x0008
#endif
#ifndef SYS_faccessat2
#define SYS_faccessat2 439
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif
#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif
#ifndef TIOCGPTPEER
#define TIOCGPTPEER _IO('T', 0x41)
#endif
#ifndef KEYCTL_JOIN_SESSION_KEYRING
#define KEYCTL_JOIN_SESSION_KEYRING 1
#endif

enum { FD_CONFIG = 3, FD_STATUS = 4, FD_PIDFD = 5, FD_CONSOLE = 6, FD_SELF = 7 };

/* Status records, helper to shim: struct msg, then len bytes. */
enum {
	MSG_PID = 1,      /* val: the process's pid (host namespace) */
	MSG_SETUP = 2,    /* val: errno; data: what failed. The shim uses runc. */
	MSG_NOTFOUND = 3, /* data: name; exec.ErrNotFound */
	MSG_DOT = 4,      /* data: name; exec.ErrDot */
	MSG_STAT = 5,     /* val: errno; data: name; stat failed */
	MSG_PERM = 6,     /* data: name; not an executable file */
	MSG_EACCESS = 7,  /* val: errno; data: path; eaccess failed */
};

struct msg {
	int32_t type, val, len;
};

/* seccomp filter file: "BNSF", u32 count (0: none), then per filter
 * (oldest first) u32 instruction count and the instructions. */
static const char filter_magic[4] = {'B', 'N', 'S', 'F'};

#define MAXCAP 64
enum { CAP_B, CAP_E, CAP_P, CAP_I, CAP_A, NCAPSETS };

struct config {
	char **args, **env, **addgids, **cgroups;
	int nargs, nenv, naddgids, ncgroups;
	const char *cwd, *keyring, *filter, *cgroup2;
	uint32_t uid, gid;
	uint64_t caps[NCAPSETS];
	int nnp, terminal, has_oom, oom, lastcap;
	unsigned short rows, cols;
	unsigned long nsflags;
	struct {
		int res;
		unsigned long long soft, hard;
	} rlim[32];
	int nrlim;
};

struct filters {
	int n;
	struct sock_fprog prog[16];
};

static const char *go_errstr(int e);
static pid_t fork_into(int cgfd, int *into);

/* ---------------------------------------------------------------- status */

static void send_msg(int type, int val, const char *data)
{
	struct msg m = {type, val, data ? (int32_t)strlen(data) : 0};
	struct iovec iov[2] = {{&m, sizeof m}, {(void *)data, data ? strlen(data) : 0}};
	/* One record per writev; the shim reads to EOF. Errors: nobody
	 * listens any more, nothing to do. */
	ssize_t r;
	do
		r = writev(FD_STATUS, iov, 2);
	while (r < 0 && errno == EINTR);
}

/* setup_fail reports what failed (the shim falls back to runc, whose own
 * error the user then sees) and exits. */
static void __attribute__((noreturn, format(printf, 1, 2))) setup_fail(const char *fmt, ...)
{
	int e = errno;
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	send_msg(MSG_SETUP, e, buf);
	_exit(1);
}

static void __attribute__((noreturn)) fail_msg(int type, int val, const char *data)
{
	send_msg(type, val, data);
	_exit(1);
}

/* ---------------------------------------------------------------- utils */

static ssize_t read_all(int fd, char **out, size_t max)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap + 1);
	if (!buf)
		return -1;
	for (;;) {
		if (n == cap) {
			if (cap >= max) {
				free(buf);
				errno = EFBIG;
				return -1;
			}
			cap *= 2;
			char *nb = realloc(buf, cap + 1);
			if (!nb) {
				free(buf);
				return -1;
			}
			buf = nb;
		}
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			free(buf);
			return -1;
		}
		if (r == 0)
			break;
		n += r;
	}
	buf[n] = 0;
	*out = buf;
	return n;
}

static int write_full(int fd, const void *p, size_t n)
{
	const char *c = p;
	while (n > 0) {
		ssize_t r = write(fd, c, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		c += r;
		n -= r;
	}
	return 0;
}

static int parse_ulong(const char *s, unsigned long long *v)
{
	char *end;
	if (!*s)
		return -1;
	errno = 0;
	*v = strtoull(s, &end, 10);
	return (errno || *end) ? -1 : 0;
}

static void push(char ***list, int *n, char *v)
{
	char **l = realloc(*list, sizeof(char *) * (*n + 2));
	if (!l)
		setup_fail("out of memory");
	l[(*n)++] = v;
	l[*n] = NULL;
	*list = l;
}

/* ---------------------------------------------------------------- config */

/* The config is a sequence of records "<tag><value>\0". */
static void read_config(struct config *c)
{
	char *buf;
	ssize_t n = read_all(FD_CONFIG, &buf, 16 << 20);
	if (n < 0)
		setup_fail("read config");
	close(FD_CONFIG);
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
		case 'o':
			c->has_oom = 1;
			c->oom = atoi(v);
			break;
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
			if (parse_ulong(a, &x) || parse_ulong(b, &y) || parse_ulong(d, &z))
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

static const char *env_get(struct config *c, const char *key)
{
	size_t kl = strlen(key);
	for (int i = 0; i < c->nenv; i++)
		if (!strncmp(c->env[i], key, kl) && c->env[i][kl] == '=')
			return c->env[i] + kl + 1;
	return NULL;
}

/* ---------------------------------------------------------------- seccomp */

static void load_filter_file(const char *path, struct filters *f)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		setup_fail("open %s", path);
	char *buf;
	ssize_t n = read_all(fd, &buf, 64 << 20);
	close(fd);
	if (n < 8 || memcmp(buf, filter_magic, 4)) {
		errno = EINVAL;
		setup_fail("bad filter file");
	}
	uint32_t count;
	memcpy(&count, buf + 4, 4);
	if (count > 16) {
		errno = EINVAL;
		setup_fail("bad filter count %u", count);
	}
	size_t off = 8;
	f->n = 0;
	for (uint32_t i = 0; i < count; i++) {
		uint32_t len;
		if (off + 4 > (size_t)n)
			goto bad;
		memcpy(&len, buf + off, 4);
		off += 4;
		if (len == 0 || len > BPF_MAXINSNS || off + (size_t)len * sizeof(struct sock_filter) > (size_t)n)
			goto bad;
		f->prog[f->n].len = len;
		f->prog[f->n].filter = (struct sock_filter *)(buf + off);
		f->n++;
		off += (size_t)len * sizeof(struct sock_filter);
	}
	if (off != (size_t)n)
		goto bad;
	return;
bad:
	errno = EINVAL;
	setup_fail("bad filter file");
}

static void apply_filters(struct filters *f)
{
	for (int i = 0; i < f->n; i++)
		if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &f->prog[i], 0, 0) < 0)
			setup_fail("load seccomp filter");
}

/* status_field reads a number from /proc/<pid>/status, -1 if none */
static int status_field(pid_t pid, const char *name)
{
	char path[64], *buf;
	snprintf(path, sizeof path, "/proc/%d/status", pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read_all(fd, &buf, 1 << 20);
	close(fd);
	if (n < 0)
		return -1;
	for (char *line = buf; line && *line;) {
		char *nl = strchr(line, '\n');
		if (!strncmp(line, name, strlen(name)))
			return atoi(line + strlen(name));
		line = nl ? nl + 1 : NULL;
	}
	return -1;
}

/* filter_main dumps the filters of the main thread of pid. berth-shim runs
 * it after `runc create`, while the init waits to be started and has run
 * nothing of the container's: its filters are exactly the ones runc
 * installed. */
static int filter_main(const char *pidstr)
{
	unsigned long long v;
	if (parse_ulong(pidstr, &v) || v == 0 || v > INT_MAX) {
		fprintf(stderr, "berth-nsexec: bad pid %s\n", pidstr);
		return 2;
	}
	pid_t pid = v;
	if (ptrace(PTRACE_SEIZE, pid, 0, 0) < 0) {
		perror("berth-nsexec: PTRACE_SEIZE");
		return 1;
	}
	if (ptrace(PTRACE_INTERRUPT, pid, 0, 0) < 0) {
		perror("berth-nsexec: PTRACE_INTERRUPT");
		return 1;
	}
	int st;
	for (;;) {
		pid_t r = waitpid(pid, &st, __WALL);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			perror("berth-nsexec: waitpid");
			return 1;
		}
		if (WIFSTOPPED(st))
			break;
		fprintf(stderr, "berth-nsexec: %d exited\n", pid);
		return 1;
	}
	struct sock_filter *progs[16];
	uint32_t lens[16];
	int n = 0, rc = 0;
	for (;; n++) {
		long len = ptrace(PTRACE_SECCOMP_GET_FILTER, pid, (void *)(long)n, NULL);
		if (len < 0 && (errno == ENOENT || (n == 0 && errno == EINVAL)))
			break; /* no more; EINVAL: not in filter mode */
		if (len <= 0 || n == 16) {
			perror("berth-nsexec: PTRACE_SECCOMP_GET_FILTER");
			rc = 1;
			break;
		}
		progs[n] = calloc(len, sizeof(struct sock_filter));
		if (!progs[n] || ptrace(PTRACE_SECCOMP_GET_FILTER, pid, (void *)(long)n, progs[n]) != len) {
			perror("berth-nsexec: PTRACE_SECCOMP_GET_FILTER");
			rc = 1;
			break;
		}
		lens[n] = len;
		struct {
			uint64_t filter_off, flags;
		} md = {n, 0};
		if (ptrace(PTRACE_SECCOMP_GET_METADATA, pid, (void *)sizeof md, &md) < 0) {
			perror("berth-nsexec: PTRACE_SECCOMP_GET_METADATA");
			rc = 1;
			break;
		}
		if (md.flags != 0) {
			/* SECCOMP_FILTER_FLAG_LOG and the like: not reproduced */
			fprintf(stderr, "berth-nsexec: filter %d has flags %#llx\n", n, (unsigned long long)md.flags);
			rc = 1;
			break;
		}
	}
	ptrace(PTRACE_DETACH, pid, 0, 0);
	if (rc)
		return rc;
	/* The kernel's count must agree: a filter we could not read would
	 * otherwise be missing from every exec. */
	int want = status_field(pid, "Seccomp_filters:");
	if (want != n) {
		fprintf(stderr, "berth-nsexec: read %d seccomp filters of %d, the kernel counts %d\n", n, pid, want);
		return 1;
	}
	uint32_t count = n;
	if (write_full(1, filter_magic, 4) || write_full(1, &count, 4))
		return 1;
	for (int i = n - 1; i >= 0; i--) /* index 0 is the newest */
		if (write_full(1, &lens[i], 4) || write_full(1, progs[i], (size_t)lens[i] * sizeof(struct sock_filter)))
			return 1;
	return 0;
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

/* ---------------------------------------------------------------- user */

/* go_atoi is strconv.Atoi as runc's user package uses it: a failed parse
 * counts as 0. */
static long long go_atoi(const char *s, size_t n)
{
	size_t i = 0;
	int neg = 0;
	if (n > 0 && (s[0] == '+' || s[0] == '-')) {
		neg = s[0] == '-';
		i = 1;
	}
	if (i == n)
		return 0;
	unsigned long long v = 0;
	for (; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		if (v > (unsigned long long)LLONG_MAX / 10)
			return 0;
		v = v * 10 + (s[i] - '0');
		if (v > (unsigned long long)LLONG_MAX + neg)
			return 0;
	}
	return neg ? -(long long)v : (long long)v;
}

/* A passwd or group file, as runc 1.1's user package reads it: lines (a
 * trailing \r dropped), trimmed of white space, empty ones skipped. The
 * passwd parser (bufio.Scanner) fails on a line of 64 KiB; the group
 * parser has no limit and skips comments. Lines it would read differently
 * from us (non-ASCII white space at an edge) are a setup error. */
struct dbfile {
	char *buf;
	size_t len, pos;
	int group;
};

static int db_open(struct dbfile *f, const char *path, int group)
{
	f->buf = NULL;
	f->len = f->pos = 0;
	f->group = group;
	/* O_NONBLOCK: a FIFO planted by the container must not hang us */
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return -1; /* runc: no file, no entries */
	struct stat st;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > (16 << 20)) {
		errno = EINVAL;
		setup_fail("unusual %s", path);
	}
	ssize_t n = read_all(fd, &f->buf, 16 << 20);
	close(fd);
	if (n < 0)
		setup_fail("read %s", path);
	f->len = n;
	return 0;
}

static int is_space(unsigned char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\v' || ch == '\f' || ch == '\r';
}

/* db_next returns the next entry's line in [*s, *s+*n) */
static int db_next(struct dbfile *f, char **s, size_t *n)
{
	while (f->pos < f->len) {
		char *line = f->buf + f->pos;
		char *nl = memchr(line, '\n', f->len - f->pos);
		size_t ll = nl ? (size_t)(nl - line) : f->len - f->pos;
		f->pos += ll + (nl ? 1 : 0);
		if (!f->group && ll >= 65000) {
			errno = E2BIG;
			setup_fail("line too long in /etc/passwd");
		}
		while (ll > 0 && is_space(line[0]))
			line++, ll--;
		while (ll > 0 && is_space(line[ll - 1]))
			ll--;
		if (ll == 0 || (f->group && line[0] == '#'))
			continue;
		if ((unsigned char)line[0] >= 0x80 || (unsigned char)line[ll - 1] >= 0x80) {
			errno = EINVAL;
			setup_fail("non-ASCII edge in a passwd or group line");
		}
		*s = line;
		*n = ll;
		return 1;
	}
	return 0;
}

/* field i of a line, or an empty field */
static void db_field(char *s, size_t n, int i, char **fs, size_t *fn)
{
	char *end = s + n;
	for (; i > 0; i--) {
		char *c = memchr(s, ':', end - s);
		if (!c) {
			*fs = end;
			*fn = 0;
			return;
		}
		s = c + 1;
	}
	char *c = memchr(s, ':', end - s);
	*fs = s;
	*fn = c ? (size_t)(c - s) : (size_t)(end - s);
}

/* home_of is the home of the first passwd entry of uid, "/" if none. */
static char *home_of(uint32_t uid)
{
	struct dbfile f;
	char *home = "/";
	if (db_open(&f, "/etc/passwd", 0) < 0)
		return home;
	char *s, *fs;
	size_t n, fn;
	while (db_next(&f, &s, &n)) {
		db_field(s, n, 2, &fs, &fn);
		if (go_atoi(fs, fn) != (long long)uid)
			continue;
		db_field(s, n, 5, &fs, &fn);
		home = strndup(fs, fn);
		break;
	}
	return home;
}

/* additional_groups resolves the additional gids as runc's
 * user.GetAdditionalGroups does (a group named like the number wins). */
static int additional_groups(struct config *c, gid_t *out)
{
	struct dbfile f;
	int have = db_open(&f, "/etc/group", 1) == 0;
	int n = 0;
	for (int i = 0; i < c->naddgids; i++) {
		const char *ag = c->addgids[i];
		size_t al = strlen(ag);
		int found = 0;
		if (have) {
			char *s, *fs;
			size_t ln, fn;
			f.pos = 0;
			while (!found && db_next(&f, &s, &ln)) {
				long long gid;
				char num[32];
				db_field(s, ln, 2, &fs, &fn);
				gid = go_atoi(fs, fn);
				snprintf(num, sizeof num, "%lld", gid);
				db_field(s, ln, 0, &fs, &fn);
				if (!((fn == al && !memcmp(fs, ag, al)) || !strcmp(num, ag)))
					continue;
				int dup = 0;
				for (int j = 0; j < n; j++)
					dup |= out[j] == (gid_t)gid;
				if (!dup) {
					if (gid < 0 || gid > INT_MAX) {
						errno = ERANGE;
						setup_fail("group %s out of range", ag);
					}
					out[n++] = gid;
					found = 1;
				}
			}
		}
		if (!found) {
			unsigned long long g;
			if (parse_ulong(ag, &g) || g > INT_MAX) {
				errno = EINVAL;
				setup_fail("group %s", ag);
			}
			int dup = 0;
			for (int j = 0; j < n; j++)
				dup |= out[j] == (gid_t)g;
			if (!dup)
				out[n++] = g;
		}
	}
	free(f.buf);
	return n;
}

/* fix_stdio gives the user its stdio, as runc's fixStdioPermissions. */
static void fix_stdio(uint32_t uid)
{
	struct stat null, st;
	if (stat("/dev/null", &null) < 0)
		setup_fail("stat /dev/null");
	static const int fds[] = {0, 2, 1};
	for (int i = 0; i < 3; i++) {
		if (fstat(fds[i], &st) < 0)
			setup_fail("fstat %d", fds[i]);
		if (st.st_rdev == null.st_rdev)
			continue;
		if (fchown(fds[i], uid, st.st_gid) < 0 && errno != EINVAL && errno != EPERM && errno != EROFS)
			setup_fail("fchown %d", fds[i]);
	}
}

/* setup_user: runc's setupUser for a "uid:gid" user. */
static void setup_user(struct config *c)
{
	char *home = home_of(c->uid);
	gid_t groups[256];
	int ng = 0;
	if (c->naddgids > 256) {
		errno = E2BIG;
		setup_fail("too many groups");
	}
	if (c->naddgids > 0)
		ng = additional_groups(c, groups);
	/* runc's GetExecUser also reads /etc/group for the "uid:gid" form;
	 * the gid stays as given, and only a read error would matter. */
	fix_stdio(c->uid);
	char sg[16] = "";
	int fd = open("/proc/self/setgroups", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		setup_fail("open /proc/self/setgroups");
	ssize_t r = read(fd, sg, sizeof sg - 1);
	close(fd);
	if (r < 0)
		setup_fail("read /proc/self/setgroups");
	if (strncmp(sg, "deny", 4) != 0 && syscall(SYS_setgroups, ng, groups) < 0)
		setup_fail("setgroups");
	if (syscall(SYS_setgid, c->gid) < 0)
		setup_fail("setgid");
	if (syscall(SYS_setuid, c->uid) < 0)
		setup_fail("setuid");
	const char *h = env_get(c, "HOME");
	if (!h || !*h) {
		char *kv;
		if (asprintf(&kv, "HOME=%s", home) < 0)
			setup_fail("out of memory");
		if (h) { /* empty HOME: Go's Setenv replaces it in place */
			for (int i = 0; i < c->nenv; i++)
				if (!strncmp(c->env[i], "HOME=", 5))
					c->env[i] = kv;
		} else {
			push(&c->env, &c->nenv, kv);
		}
	}
}

/* ---------------------------------------------------------------- lookup */

/* clean is Go's path.Clean (filepath.Clean on Unix). */
static char *clean(const char *p)
{
	size_t n = strlen(p);
	if (n == 0)
		return strdup(".");
	char *out = malloc(n + 2);
	if (!out)
		setup_fail("out of memory");
	int rooted = p[0] == '/';
	size_t r = 0, w = 0, dotdot = 0;
	if (rooted) {
		out[w++] = '/';
		r = 1;
		dotdot = 1;
	}
	while (r < n) {
		if (p[r] == '/') {
			r++;
		} else if (p[r] == '.' && (r + 1 == n || p[r + 1] == '/')) {
			r++;
		} else if (p[r] == '.' && p[r + 1] == '.' && (r + 2 == n || p[r + 2] == '/')) {
			r += 2;
			if (w > dotdot) {
				w--;
				while (w > dotdot && out[w] != '/')
					w--;
			} else if (!rooted) {
				if (w > 0)
					out[w++] = '/';
				out[w++] = '.';
				out[w++] = '.';
				dotdot = w;
			}
		} else {
			if ((rooted && w != 1) || (!rooted && w != 0))
				out[w++] = '/';
			for (; r < n && p[r] != '/'; r++)
				out[w++] = p[r];
		}
	}
	if (w == 0)
		out[w++] = '.';
	out[w] = 0;
	return out;
}

/* find_executable: 0, or an errno from stat, or -1 (not executable) */
static int find_executable(const char *file)
{
	struct stat st;
	int r;
	do
		r = stat(file, &st);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return errno;
	if (!S_ISDIR(st.st_mode) && (st.st_mode & 0111))
		return 0;
	return -1;
}

/* stat_error: a stat errno that a seccomp profile or an odd kernel may
 * cause while runc's own calls would succeed: let runc decide. */
static void check_stat_errno(int e)
{
	if (e == EPERM || e == ENOSYS) {
		errno = e;
		setup_fail("stat");
	}
}

/* lookpath is Go 1.19's exec.LookPath, as runc 1.1 runs it. */
static char *lookpath(struct config *c)
{
	const char *file = c->args[0];
	if (strchr(file, '/')) {
		int e = find_executable(file);
		if (e == 0)
			return (char *)file;
		if (e > 0) {
			check_stat_errno(e);
			fail_msg(MSG_STAT, e, file);
		}
		fail_msg(MSG_PERM, 0, file);
	}
	const char *path = env_get(c, "PATH");
	if (path && *path) {
		const char *p = path;
		for (;;) {
			const char *colon = strchr(p, ':');
			size_t dl = colon ? (size_t)(colon - p) : strlen(p);
			char *joined;
			if (dl == 0) {
				if (asprintf(&joined, "./%s", file) < 0)
					setup_fail("out of memory");
			} else if (asprintf(&joined, "%.*s/%s", (int)dl, p, file) < 0) {
				setup_fail("out of memory");
			}
			char *name = clean(*file ? joined : (dl ? strndup(p, dl) : "."));
			int e = find_executable(name);
			if (e == 0) {
				if (name[0] != '/')
					fail_msg(MSG_DOT, 0, file);
				return name;
			}
			check_stat_errno(e > 0 ? e : 0);
			if (!colon)
				break;
			p = colon + 1;
		}
	}
	fail_msg(MSG_NOTFOUND, 0, file);
}

/* eaccess is runc's system.Eaccess. */
static int runc_eaccess(const char *path)
{
	if (syscall(SYS_faccessat2, AT_FDCWD, path, X_OK, AT_EACCESS) == 0)
		return 0;
	if (errno != ENOSYS && errno != EPERM)
		return errno;
	if (getuid() == geteuid() && getgid() == getegid())
		return syscall(SYS_faccessat, AT_FDCWD, path, X_OK) == 0 ? 0 : errno;
	return 0;
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
	 * O_NOCTTY: as a session leader we take it as our terminal. */
	int fd = ioctl(master, TIOCGPTPEER, O_RDWR);
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
static const char *const go_errors[] = {
#include "goerrors.h"
};

static const char *go_errstr(int e)
{
	static char buf[32];
	if (e > 0 && e < (int)(sizeof go_errors / sizeof go_errors[0]) && go_errors[e])
		return go_errors[e];
	snprintf(buf, sizeof buf, "errno %d", e);
	return buf;
}
