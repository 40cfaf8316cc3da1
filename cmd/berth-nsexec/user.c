/* berth-nsexec: the user, groups and home as runc 1.1 sets them up, and the
 * executable's lookup as runc (Go 1.19's exec.LookPath) does it. */
#define _GNU_SOURCE
#include "nsexec.h"

/* the container's files (the helper has joined its mount namespace); the
 * fuzz harness (fuzz/) names its own */
#ifndef PASSWD_FILE
#define PASSWD_FILE "/etc/passwd"
#define GROUP_FILE "/etc/group"
#endif

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
	if (neg) /* -2^63 itself has no positive counterpart */
		return v > (unsigned long long)LLONG_MAX ? LLONG_MIN : -(long long)v;
	return v;
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
	if (db_open(&f, PASSWD_FILE, 0) < 0)
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
	free(f.buf);
	return home;
}

/* additional_groups resolves the additional gids as runc's
 * user.GetAdditionalGroups does (a group named like the number wins). */
static int additional_groups(struct config *c, gid_t *out)
{
	struct dbfile f;
	int have = db_open(&f, GROUP_FILE, 1) == 0;
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
void setup_user(struct config *c)
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
char *lookpath(struct config *c)
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
			char *dir = dl ? strndup(p, dl) : NULL;
			char *name = clean(*file ? joined : (dir ? dir : "."));
			free(joined);
			free(dir);
			int e = find_executable(name);
			if (e == 0) {
				if (name[0] != '/')
					fail_msg(MSG_DOT, 0, file);
				return name;
			}
			free(name);
			check_stat_errno(e > 0 ? e : 0);
			if (!colon)
				break;
			p = colon + 1;
		}
	}
	fail_msg(MSG_NOTFOUND, 0, file);
}

/* eaccess is runc's system.Eaccess. */
int runc_eaccess(const char *path)
{
	if (syscall(SYS_faccessat2, AT_FDCWD, path, X_OK, AT_EACCESS) == 0)
		return 0;
	if (errno != ENOSYS && errno != EPERM)
		return errno;
	if (getuid() == geteuid() && getgid() == getegid())
		return syscall(SYS_faccessat, AT_FDCWD, path, X_OK) == 0 ? 0 : errno;
	return 0;
}

