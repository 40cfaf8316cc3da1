/* fuzz_userdb: the container's /etc/passwd and /etc/group as berth-nsexec
 * reads them (runc 1.1's rules), and the executable's lookup (Go's
 * exec.LookPath). The input is NUL-separated: passwd, group, uid, PATH,
 * file, additional groups...; a missing group field means no /etc/group.
 * Checked against small reference readers written apart from user.c: the
 * lines it takes, go_atoi against strtoll, the home of a uid, the groups it
 * resolves; and what lookpath returns is an executable named as Go would. */
#define _GNU_SOURCE
#include <stdio.h>
static char fuzz_passwd[64], fuzz_group[64];
#define PASSWD_FILE fuzz_passwd
#define GROUP_FILE fuzz_group
#include "../user.c"
#include "harness.h"
#include <sys/mman.h>

/* lines and the paths of lookpath leak on the helper's exits (it execs or
 * exits at once); the harness cannot reach them */
const char *__asan_default_options(void)
{
	return "detect_leaks=0";
}

static int passwd_fd = -1, group_fd = -1;

/* The files are memfds (regular files to db_open), named through /proc. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	passwd_fd = memfd_create("passwd", MFD_CLOEXEC);
	group_fd = memfd_create("group", MFD_CLOEXEC);
	if (passwd_fd < 0 || group_fd < 0)
		abort();
	snprintf(fuzz_passwd, sizeof fuzz_passwd, "/proc/self/fd/%d", passwd_fd);
	return 0;
}

static void set_file(int fd, const char *data, size_t n)
{
	if (ftruncate(fd, 0) < 0 || pwrite(fd, data, n, 0) != (ssize_t)n)
		abort();
}

/* ref_atoi is strconv.Atoi (0 on failure) by strtoll */
static long long ref_atoi(const char *s, size_t n)
{
	size_t i = n > 0 && (s[0] == '+' || s[0] == '-');
	if (i == n)
		return 0;
	for (size_t j = i; j < n; j++)
		if (s[j] < '0' || s[j] > '9')
			return 0;
	char *tmp = strndup(s, n);
	if (!tmp)
		abort();
	errno = 0;
	long long v = strtoll(tmp, NULL, 10);
	free(tmp);
	return errno ? 0 : v;
}

/* ref_field is field i of a line split at every ':' */
static void ref_field(const char *s, size_t n, int i, const char **fs, size_t *fn)
{
	const char *end = s + n, *p = s;
	for (int k = 0; k < i; k++) {
		while (p < end && *p != ':')
			p++;
		if (p == end) {
			*fs = end;
			*fn = 0;
			return;
		}
		p++;
	}
	const char *q = p;
	while (q < end && *q != ':')
		q++;
	*fs = p;
	*fn = q - p;
}

/* lines reads the db with db_next, checking every line it takes: the
 * lines taken, and *refused if it then refused the file (with one setup
 * record). */
struct lines {
	int n, refused;
	char *s[4096];
	size_t len[4096];
};

static void lines(struct dbfile *f, struct lines *l)
{
	char *s;
	size_t ln;
	l->n = 0;
	l->refused = 0;
	f->pos = 0;
	fuzz_reset();
	if (setjmp(fuzz_jmp)) {
		fuzz_check(fuzz_recs.n == 1 && fuzz_recs.type == MSG_SETUP && (fuzz_recs.val == E2BIG || fuzz_recs.val == EINVAL),
			   "refusal: %d records, type %d, errno %d", fuzz_recs.n, fuzz_recs.type, fuzz_recs.val);
		l->refused = 1;
		return;
	}
	char *prev = f->buf;
	while (l->n < 4096 && db_next(f, &s, &ln)) {
		fuzz_check(s >= prev && s + ln <= f->buf + f->len, "line outside the file or out of order");
		fuzz_check(ln > 0 && !memchr(s, '\n', ln), "empty line or a newline in it");
		fuzz_check(!is_space(s[0]) && !is_space(s[ln - 1]), "white space at an edge");
		fuzz_check(!f->group || s[0] != '#', "a comment taken from group");
		fuzz_check(f->group || ln < 65000, "a passwd line of %zu", ln);
		prev = s + ln;
		l->s[l->n] = s;
		l->len[l->n++] = ln;
	}
}

static void check_atoi(const char *s, size_t n)
{
	fuzz_check(go_atoi(s, n) == ref_atoi(s, n), "go_atoi(%.*s) = %lld, strtoll %lld", (int)n, s, go_atoi(s, n),
			   ref_atoi(s, n));
}

static void check_clean(const char *p)
{
	char *c = clean(p), *cc = clean(c);
	size_t n = strlen(c);
	fuzz_check(!strcmp(c, cc), "clean(%s) = %s, clean of that %s", p, c, cc);
	fuzz_check(n <= (strlen(p) ? strlen(p) : 1), "clean(%s) = %s is longer", p, c);
	fuzz_check(!strstr(c, "//") && !strstr(c, "/./") && (n == 1 || c[n - 1] != '/'), "clean(%s) = %s", p, c);
	fuzz_check((p[0] == '/') == (c[0] == '/'), "clean(%s) = %s: rooted", p, c);
	free(c);
	free(cc);
}

static void check_lookpath(char *path, char *file)
{
	struct config c = {0};
	char *args[] = {file, NULL};
	char *env[] = {NULL, NULL};
	char *kv = NULL;
	if (path) {
		if (asprintf(&kv, "PATH=%s", path) < 0)
			abort();
		env[0] = kv;
	}
	c.args = args;
	c.nargs = 1;
	c.env = env;
	c.nenv = path ? 1 : 0;
	fuzz_reset();
	if (setjmp(fuzz_jmp)) {
		int t = fuzz_recs.type;
		fuzz_check(fuzz_recs.n == 1, "%d records", fuzz_recs.n);
		if (strchr(file, '/')) {
			fuzz_check(t == MSG_STAT || t == MSG_PERM || t == MSG_SETUP, "type %d for %s", t, file);
		} else {
			fuzz_check(t == MSG_NOTFOUND || t == MSG_DOT || t == MSG_SETUP, "type %d for %s", t, file);
		}
		if (t != MSG_SETUP)
			fuzz_check(!strcmp(fuzz_recs.data, file), "record names %s, not %s", fuzz_recs.data, file);
		free(kv);
		return;
	}
	char *name = lookpath(&c);
	struct stat st;
	fuzz_check(stat(name, &st) == 0 && !S_ISDIR(st.st_mode) && (st.st_mode & 0111), "%s is no executable", name);
	if (strchr(file, '/')) {
		fuzz_check(name == file, "%s found as %s", file, name);
	} else {
		size_t nl = strlen(name), fl = strlen(file);
		fuzz_check(name[0] == '/', "%s found relative: %s", file, name);
		/* an empty name is found as a PATH entry itself, as Go does */
		fuzz_check(fl == 0 || (nl > fl && name[nl - fl - 1] == '/' && !strcmp(name + nl - fl, file)), "%s found as %s", file,
			   name);
		char *c2 = clean(name);
		fuzz_check(!strcmp(c2, name), "%s not clean", name);
		free(c2);
		free(name);
	}
	free(kv);
}

static struct lines pl, gl;

/* check_home: home_of(uid) is the home of the first line of uid among the
 * lines db_next takes; past them, if it refused the file, home_of must too */
static void check_home(uint32_t uid)
{
	const char *want = NULL;
	size_t wn = 0;
	for (int i = 0; i < pl.n && !want; i++) {
		const char *fs;
		size_t fn;
		ref_field(pl.s[i], pl.len[i], 2, &fs, &fn);
		if (ref_atoi(fs, fn) == (long long)uid) {
			ref_field(pl.s[i], pl.len[i], 5, &want, &wn);
			wn = strnlen(want, wn);
		}
	}
	fuzz_reset();
	if (setjmp(fuzz_jmp)) {
		fuzz_check(!want && pl.refused, "home_of refused a passwd that db_next took");
		return;
	}
	char *home = home_of(uid);
	if (!want) {
		fuzz_check(!pl.refused && !strcmp(home, "/"), "home of %u: %s, not /", uid, home);
		return;
	}
	fuzz_check(strlen(home) == wn && !memcmp(home, want, wn), "home of %u: %s, not %.*s", uid, home, (int)wn, want);
	free(home);
}

/* group_of: whether gid is what runc takes for ag from a group line: one
 * named ag, or whose number reads as ag */
static int group_of(gid_t gid, const char *ag)
{
	for (int l = 0; l < gl.n; l++) {
		const char *ns, *gs;
		size_t nn, gn;
		char num[32];
		ref_field(gl.s[l], gl.len[l], 0, &ns, &nn);
		ref_field(gl.s[l], gl.len[l], 2, &gs, &gn);
		snprintf(num, sizeof num, "%lld", ref_atoi(gs, gn));
		if (ref_atoi(gs, gn) == (long long)gid && ((nn == strlen(ag) && !memcmp(ns, ag, nn)) || !strcmp(num, ag)))
			return 1;
	}
	return 0;
}

/* check_groups: no gid twice, each in range and one that an additional
 * group names (a number, or a line of /etc/group) */
static void check_groups(char **ags, int nag)
{
	struct config c = {0};
	c.addgids = ags;
	c.naddgids = nag;
	gid_t out[256];
	fuzz_reset();
	if (setjmp(fuzz_jmp)) {
		fuzz_check(fuzz_recs.n == 1 && fuzz_recs.type == MSG_SETUP, "type %d", fuzz_recs.type);
		return;
	}
	int n = additional_groups(&c, out);
	fuzz_check(n <= nag, "%d groups of %d", n, nag);
	for (int i = 0; i < n; i++) {
		fuzz_check(out[i] <= INT_MAX, "gid %u", out[i]);
		for (int j = 0; j < i; j++)
			fuzz_check(out[i] != out[j], "gid %u twice", out[i]);
		int why = 0;
		for (int a = 0; a < nag && !why; a++) {
			unsigned long long g;
			why = (!parse_ulong(ags[a], &g) && g == out[i]) || group_of(out[i], ags[a]);
		}
		fuzz_check(why, "gid %u from nowhere", out[i]);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *in = malloc(size + 1), *field[64];
	if (!in)
		abort();
	memcpy(in, data, size);
	in[size] = 0;
	int nf = 0;
	for (char *p = in; p <= in + size && nf < 64;) {
		field[nf++] = p;
		p += strnlen(p, in + size - p) + 1;
	}
	struct dbfile pf, gf = {0};
	set_file(passwd_fd, field[0], strlen(field[0]));
	fuzz_check(db_open(&pf, fuzz_passwd, 0) == 0, "no passwd");
	lines(&pf, &pl);
	gl.n = gl.refused = 0;
	if (nf > 1) {
		set_file(group_fd, field[1], strlen(field[1]));
		snprintf(fuzz_group, sizeof fuzz_group, "/proc/self/fd/%d", group_fd);
		fuzz_check(db_open(&gf, fuzz_group, 1) == 0, "no group");
		lines(&gf, &gl);
	} else {
		snprintf(fuzz_group, sizeof fuzz_group, "/nonexistent/group");
	}

	for (int i = 0; i < pl.n; i++)
		for (int k = 0; k < 7; k++) {
			char *fs;
			const char *rs;
			size_t fn, rn;
			db_field(pl.s[i], pl.len[i], k, &fs, &fn);
			ref_field(pl.s[i], pl.len[i], k, &rs, &rn);
			fuzz_check(fs == rs && fn == rn, "field %d of line %d", k, i);
			check_atoi(fs, fn);
		}
	unsigned long long uid = 0;
	if (nf > 2)
		parse_ulong(field[2], &uid);
	if (pl.n < 4096)
		check_home((uint32_t)uid);
	if (nf > 5 && gl.n < 4096)
		check_groups(field + 5, nf - 5);
	if (nf > 4) {
		check_clean(field[3]);
		check_clean(field[4]);
		check_lookpath(field[3], field[4]);
	}
	free(pf.buf);
	free(gf.buf);
	free(in);
	return 0;
}
