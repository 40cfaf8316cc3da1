/* fuzz_config: the config records berth-shim hands berth-nsexec on fd 3
 * (read_all, parse_config). A config is either refused with one setup
 * record, or parsed into a config whose strings lie in the input and whose
 * numbers are in range; writing it back out as records and parsing that
 * gives the same config (round trip). */
#define main nsexec_main
#include "../nsexec.c"
#undef main
#include "harness.h"
#include <sys/mman.h>

static int memfd = -1;

/* in_buf: s is a NUL-terminated string inside [buf, buf+n] */
static int in_buf(const char *s, const char *buf, size_t n)
{
	return s >= buf && s <= buf + n && memchr(s, 0, buf + n + 1 - s) != NULL;
}

static void check_list(char **l, int n, const char *buf, size_t len, const char *what)
{
	if (n == 0) {
		fuzz_check(l == NULL, "%s: empty list allocated", what);
		return;
	}
	fuzz_check(l[n] == NULL, "%s: list not NULL-terminated", what);
	for (int i = 0; i < n; i++)
		fuzz_check(in_buf(l[i], buf, len), "%s %d outside the input", what, i);
}

/* put appends one record: tag, value, NUL */
static void put(char **out, size_t *len, size_t *cap, char tag, const char *fmt, ...)
{
	char v[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(v, sizeof v, fmt, ap);
	va_end(ap);
	size_t need = *len + strlen(v) + 2;
	if (need > *cap) {
		*cap = need * 2;
		*out = realloc(*out, *cap + 1);
		if (!*out)
			abort();
	}
	(*out)[(*len)++] = tag;
	memcpy(*out + *len, v, strlen(v) + 1);
	*len += strlen(v) + 1;
}

static void put_str(char **out, size_t *len, size_t *cap, char tag, const char *s)
{
	size_t need = *len + strlen(s) + 2;
	if (need > *cap) {
		*cap = need * 2;
		*out = realloc(*out, *cap + 1);
		if (!*out)
			abort();
	}
	(*out)[(*len)++] = tag;
	memcpy(*out + *len, s, strlen(s) + 1);
	*len += strlen(s) + 1;
}

/* serialize writes c back as records (as berth-shim would), in a fresh
 * buffer with read_all's trailing NUL. */
static char *serialize(struct config *c, size_t *len)
{
	char *out = NULL;
	size_t cap = 0;
	*len = 0;
	for (int i = 0; i < c->nargs; i++)
		put_str(&out, len, &cap, 'a', c->args[i]);
	for (int i = 0; i < c->nenv; i++)
		put_str(&out, len, &cap, 'e', c->env[i]);
	for (int i = 0; i < c->naddgids; i++)
		put_str(&out, len, &cap, 'G', c->addgids[i]);
	for (int i = 0; i < c->ncgroups; i++)
		put_str(&out, len, &cap, 'x', c->cgroups[i]);
	if (c->cgroup2)
		put_str(&out, len, &cap, 'y', c->cgroup2);
	if (c->cwd)
		put_str(&out, len, &cap, 'c', c->cwd);
	if (c->keyring)
		put_str(&out, len, &cap, 'k', c->keyring);
	if (c->filter)
		put_str(&out, len, &cap, 'f', c->filter);
	put(&out, len, &cap, 'u', "%u", c->uid);
	put(&out, len, &cap, 'g', "%u", c->gid);
	for (int s = 0; s < NCAPSETS; s++)
		for (int b = 0; b < MAXCAP; b++)
			if (c->caps[s] & (1ULL << b))
				put(&out, len, &cap, "BEPIA"[s], "%d", b);
	put(&out, len, &cap, 'L', "%d", c->lastcap);
	if (c->nnp)
		put(&out, len, &cap, 'n', "");
	if (c->terminal)
		put(&out, len, &cap, 't', "");
	put(&out, len, &cap, 'h', "%u", c->rows);
	put(&out, len, &cap, 'w', "%u", c->cols);
	if (c->has_oom)
		put(&out, len, &cap, 'o', "%d", c->oom);
	put(&out, len, &cap, 's', "%lu", c->nsflags);
	for (int i = 0; i < c->nrlim; i++)
		put(&out, len, &cap, 'r', "%d %llu %llu", c->rlim[i].res, c->rlim[i].soft, c->rlim[i].hard);
	out[*len] = 0;
	return out;
}

static int same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && !strcmp(a, b));
}

static int same_list(char **a, int na, char **b, int nb)
{
	if (na != nb)
		return 0;
	for (int i = 0; i < na; i++)
		if (strcmp(a[i], b[i]))
			return 0;
	return 1;
}

static void check_same(struct config *a, struct config *b)
{
	fuzz_check(same_list(a->args, a->nargs, b->args, b->nargs), "args differ");
	fuzz_check(same_list(a->env, a->nenv, b->env, b->nenv), "env differs");
	fuzz_check(same_list(a->addgids, a->naddgids, b->addgids, b->naddgids), "groups differ");
	fuzz_check(same_list(a->cgroups, a->ncgroups, b->cgroups, b->ncgroups), "cgroups differ");
	fuzz_check(same_str(a->cgroup2, b->cgroup2) && same_str(a->cwd, b->cwd) && same_str(a->keyring, b->keyring) &&
		       same_str(a->filter, b->filter),
		   "strings differ");
	fuzz_check(a->uid == b->uid && a->gid == b->gid, "user differs");
	fuzz_check(!memcmp(a->caps, b->caps, sizeof a->caps) && a->lastcap == b->lastcap, "caps differ");
	fuzz_check(a->nnp == b->nnp && a->terminal == b->terminal && a->rows == b->rows && a->cols == b->cols, "flags differ");
	fuzz_check(a->has_oom == b->has_oom && a->oom == b->oom && a->nsflags == b->nsflags, "oom or ns differ");
	fuzz_check(a->nrlim == b->nrlim, "rlimit count differs");
	for (int i = 0; i < a->nrlim; i++)
		fuzz_check(a->rlim[i].res == b->rlim[i].res && a->rlim[i].soft == b->rlim[i].soft && a->rlim[i].hard == b->rlim[i].hard,
			   "rlimit %d differs", i);
}

static int digits(const char *s, size_t n)
{
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

/* check_numbers walks the records of a config that was taken, apart from
 * parse_config: every number in them is plain decimal (what the shim
 * writes), and the rlimits taken are the ones written, in order. */
static void check_numbers(const char *data, size_t size, struct config *c)
{
	int r = 0;
	for (const char *p = data; p < data + size;) {
		char tag = *p++;
		const char *end = memchr(p, 0, data + size - p);
		size_t vl = end ? (size_t)(end - p) : (size_t)(data + size - p);
		if (strchr("ugBEPIALhws", tag) && tag)
			fuzz_check(digits(p, vl), "record %c%.*s taken", tag, (int)vl, p);
		if (tag == 'o')
			fuzz_check(digits(p + (*p == '-'), vl - (*p == '-')), "record o%.*s taken", (int)vl, p);
		if (tag == 'r') {
			char v[128];
			unsigned long long res, soft, hard;
			int used = 0;
			fuzz_check(vl < sizeof v, "long rlimit record taken");
			memcpy(v, p, vl);
			v[vl] = 0;
			fuzz_check(v[0] >= '0' && v[0] <= '9' && sscanf(v, "%llu %llu %llu%n", &res, &soft, &hard, &used) == 3 && used == (int)vl,
				   "record r%s taken", v);
			fuzz_check(r < c->nrlim && (unsigned long long)c->rlim[r].res == res && c->rlim[r].soft == soft &&
				       c->rlim[r].hard == hard,
				   "rlimit %d is not r%s", r, v);
			r++;
		}
		p += vl + 1;
	}
	fuzz_check(r == c->nrlim, "%d rlimits taken from %d records", c->nrlim, r);
}

static void free_config(struct config *c)
{
	free(c->args);
	free(c->env);
	free(c->addgids);
	free(c->cgroups);
	memset(c, 0, sizeof *c);
}

/* parse runs parse_config; 1 if it took the config, 0 if it refused it
 * (with exactly one setup record). */
static int parse(struct config *c, char *buf, size_t n)
{
	fuzz_reset();
	memset(c, 0, sizeof *c);
	if (setjmp(fuzz_jmp)) {
		fuzz_check(fuzz_recs.n == 1 && fuzz_recs.type == MSG_SETUP, "a refusal sends one setup record (%d, type %d)",
			   fuzz_recs.n, fuzz_recs.type);
		free_config(c);
		return 0;
	}
	parse_config(c, buf, n);
	fuzz_check(fuzz_recs.n == 0, "records from a good config");
	return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (memfd < 0 && (memfd = memfd_create("config", MFD_CLOEXEC)) < 0)
		abort();
	/* read_all: the whole of what the shim wrote, NUL-terminated */
	if (ftruncate(memfd, 0) < 0 || pwrite(memfd, data, size, 0) != (ssize_t)size || lseek(memfd, 0, SEEK_SET) < 0)
		abort();
	char *buf;
	ssize_t n = read_all(memfd, &buf, 16 << 20);
	fuzz_check(n == (ssize_t)size, "read_all read %zd of %zu", n, size);
	fuzz_check(!memcmp(buf, data, size) && buf[size] == 0, "read_all changed the input");

	struct config c;
	if (parse(&c, buf, n)) {
		fuzz_check(c.nargs >= 1, "no args taken");
		check_list(c.args, c.nargs, buf, n, "arg");
		check_list(c.env, c.nenv, buf, n, "env");
		check_list(c.addgids, c.naddgids, buf, n, "group");
		check_list(c.cgroups, c.ncgroups, buf, n, "cgroup");
		const char *strs[] = {c.cwd, c.keyring, c.filter, c.cgroup2};
		for (int i = 0; i < 4; i++)
			fuzz_check(!strs[i] || in_buf(strs[i], buf, n), "string %d outside the input", i);
		fuzz_check(c.uid <= INT_MAX && c.gid <= INT_MAX, "uid %u gid %u", c.uid, c.gid);
		fuzz_check(c.lastcap >= 0 && c.lastcap < MAXCAP, "lastcap %d", c.lastcap);
		fuzz_check(c.nrlim >= 0 && c.nrlim <= 32, "nrlim %d", c.nrlim);
		check_numbers((const char *)data, size, &c);

		size_t n2;
		char *again = serialize(&c, &n2);
		struct config c2;
		fuzz_check(parse(&c2, again, n2), "the config written back is refused: %s", fuzz_recs.data);
		check_same(&c, &c2);
		free_config(&c2);
		free(again);
		free_config(&c);
	}
	free(buf);
	return 0;
}
