/* The BERTH_FUZZ hooks (nsexec.h): records are kept, exits longjmp. */
#define _GNU_SOURCE
#include "../nsexec.h"
#include "harness.h"

jmp_buf fuzz_jmp;
struct fuzz_records fuzz_recs;

void fuzz_reset(void)
{
	memset(&fuzz_recs, 0, sizeof fuzz_recs);
}

void fuzz_record(int type, int val, const char *data)
{
	fuzz_recs.n++;
	fuzz_recs.type = type;
	fuzz_recs.val = val;
	snprintf(fuzz_recs.data, sizeof fuzz_recs.data, "%s", data ? data : "");
}

void __attribute__((noreturn)) fuzz_exit(void)
{
	longjmp(fuzz_jmp, 1);
}
