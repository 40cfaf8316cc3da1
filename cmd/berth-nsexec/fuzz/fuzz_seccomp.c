/* fuzz_seccomp: the filter file berth-shim hands berth-nsexec (what
 * `berth-nsexec filter` wrote). A file is either refused with one setup
 * record (EINVAL), or its filters lie inside it, in the kernel's bounds,
 * and written back in the same format they give the same bytes. */
#include "../seccomp.c"
#include "harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* as read_all leaves it: malloc'd (aligned), NUL after the end */
	char *buf = malloc(size + 1);
	if (!buf)
		abort();
	memcpy(buf, data, size);
	buf[size] = 0;
	struct filters f;
	memset(&f, 0xff, sizeof f);
	fuzz_reset();
	if (setjmp(fuzz_jmp)) {
		fuzz_check(fuzz_recs.n == 1 && fuzz_recs.type == MSG_SETUP && fuzz_recs.val == EINVAL,
			   "a refusal is one setup record with EINVAL (%d, type %d, errno %d)", fuzz_recs.n, fuzz_recs.type,
			   fuzz_recs.val);
		free(buf);
		return 0;
	}
	parse_filters(buf, size, &f);
	fuzz_check(fuzz_recs.n == 0, "records from a good file");
	fuzz_check(f.n >= 0 && f.n <= 16, "%d filters", f.n);

	/* written back: magic, count, then each filter's length and code */
	char *out = malloc(size + 1);
	if (!out)
		abort();
	size_t off = 0;
	uint32_t count = f.n;
	memcpy(out, filter_magic, 4);
	memcpy(out + 4, &count, 4);
	off = 8;
	for (int i = 0; i < f.n; i++) {
		size_t bytes = (size_t)f.prog[i].len * sizeof(struct sock_filter);
		fuzz_check(f.prog[i].len >= 1 && f.prog[i].len <= BPF_MAXINSNS, "filter %d: %u instructions", i, f.prog[i].len);
		fuzz_check((char *)f.prog[i].filter >= buf + 8 && (char *)f.prog[i].filter + bytes <= buf + size,
			   "filter %d outside the file", i);
		fuzz_check(((uintptr_t)f.prog[i].filter & 3) == 0, "filter %d misaligned", i);
		fuzz_check(off + 4 + bytes <= size, "filters longer than the file");
		uint32_t len = f.prog[i].len;
		memcpy(out + off, &len, 4);
		memcpy(out + off + 4, f.prog[i].filter, bytes);
		off += 4 + bytes;
	}
	fuzz_check(off == size && !memcmp(out, data, size), "written back: %zu bytes of %zu, or different", off, size);
	free(out);
	free(buf);
	return 0;
}
