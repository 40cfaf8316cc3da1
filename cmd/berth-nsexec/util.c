/* berth-nsexec: status records, small helpers, Go's error strings. */
#define _GNU_SOURCE
#include "nsexec.h"

/* ---------------------------------------------------------------- status */

void send_msg(int type, int val, const char *data)
{
#ifdef BERTH_FUZZ
	fuzz_record(type, val, data);
	return;
#endif
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
void __attribute__((noreturn, format(printf, 1, 2))) setup_fail(const char *fmt, ...)
{
	int e = errno;
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	send_msg(MSG_SETUP, e, buf);
	helper_exit();
}

void __attribute__((noreturn)) fail_msg(int type, int val, const char *data)
{
	send_msg(type, val, data);
	helper_exit();
}

/* ---------------------------------------------------------------- utils */

ssize_t read_all(int fd, char **out, size_t max)
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

int write_full(int fd, const void *p, size_t n)
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

/* parse_ulong takes decimal digits only: strtoull alone would also take
 * white space, a sign, and "-1" as ULLONG_MAX. */
int parse_ulong(const char *s, unsigned long long *v)
{
	char *end;
	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	*v = strtoull(s, &end, 10);
	return (errno || *end) ? -1 : 0;
}

void push(char ***list, int *n, char *v)
{
	char **l = realloc(*list, sizeof(char *) * (*n + 2));
	if (!l)
		setup_fail("out of memory");
	l[(*n)++] = v;
	l[*n] = NULL;
	*list = l;
}

const char *env_get(struct config *c, const char *key)
{
	size_t kl = strlen(key);
	for (int i = 0; i < c->nenv; i++)
		if (!strncmp(c->env[i], key, kl) && c->env[i][kl] == '=')
			return c->env[i] + kl + 1;
	return NULL;
}

static const char *const go_errors[] = {
#include "goerrors.h"
};

const char *go_errstr(int e)
{
	static char buf[32];
	if (e > 0 && e < (int)(sizeof go_errors / sizeof go_errors[0]) && go_errors[e])
		return go_errors[e];
	snprintf(buf, sizeof buf, "errno %d", e);
	return buf;
}

