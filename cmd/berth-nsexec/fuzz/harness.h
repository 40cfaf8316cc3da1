/* The fuzz harnesses' side of BERTH_FUZZ (see nsexec.h): the helper's
 * status records land here, and its exit longjmps back to the harness. */
#ifndef BERTH_FUZZ_HARNESS_H
#define BERTH_FUZZ_HARNESS_H
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>

extern jmp_buf fuzz_jmp;

/* the records sent since fuzz_reset, and the last one */
struct fuzz_records {
	int n, type, val;
	char data[4096];
};
extern struct fuzz_records fuzz_recs;

void fuzz_reset(void);

/* fuzz_check aborts (a crash libFuzzer reports with the input) when a
 * property does not hold. */
#define fuzz_check(cond, ...)                                                   \
	do {                                                                    \
		if (!(cond)) {                                                  \
			fprintf(stderr, "%s:%d: property failed: %s: ", __FILE__, \
				__LINE__, #cond);                               \
			fprintf(stderr, __VA_ARGS__);                           \
			fputc('\n', stderr);                                    \
			abort();                                                \
		}                                                               \
	} while (0)

#endif
