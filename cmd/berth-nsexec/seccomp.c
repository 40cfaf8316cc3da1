/* berth-nsexec: the seccomp filters, read from the container's init and
 * installed in an exec. */
#define _GNU_SOURCE
#include "nsexec.h"

const char filter_magic[4] = {'B', 'N', 'S', 'F'};

/* ---------------------------------------------------------------- seccomp */

static void parse_filters(char *buf, size_t n, struct filters *f);

void load_filter_file(const char *path, struct filters *f)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		setup_fail("open %s", path);
	char *buf;
	ssize_t n = read_all(fd, &buf, 64 << 20);
	close(fd);
	if (n < 0) {
		errno = EINVAL;
		setup_fail("bad filter file");
	}
	parse_filters(buf, n, f);
}

/* parse_filters reads a filter file's n bytes at buf; f points into buf. */
static void parse_filters(char *buf, size_t n, struct filters *f)
{
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
		if (off + 4 > n)
			goto bad;
		memcpy(&len, buf + off, 4);
		off += 4;
		if (len == 0 || len > BPF_MAXINSNS || off + (size_t)len * sizeof(struct sock_filter) > n)
			goto bad;
		f->prog[f->n].len = len;
		f->prog[f->n].filter = (struct sock_filter *)(buf + off);
		f->n++;
		off += (size_t)len * sizeof(struct sock_filter);
	}
	if (off != n)
		goto bad;
	return;
bad:
	errno = EINVAL;
	setup_fail("bad filter file");
}

void apply_filters(struct filters *f)
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
int filter_main(const char *pidstr)
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

