/* berth-nsexec: declarations shared by its files (see nsexec.c). */
#ifndef BERTH_NSEXEC_H
#define BERTH_NSEXEC_H
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
/* glibc defines O_LARGEFILE as 0 where it is implied; the kernel's value */
#if defined(__x86_64__)
#define KERNEL_O_LARGEFILE 0100000
#elif defined(__aarch64__)
#define KERNEL_O_LARGEFILE 0400000
#else
#error "KERNEL_O_LARGEFILE: unknown architecture"
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
extern const char filter_magic[4];

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

#ifdef BERTH_FUZZ
/* The fuzz harnesses (fuzz/) take the status records, and the exit of a
 * failed setup returns to them (longjmp) instead of ending the process. */
void fuzz_record(int type, int val, const char *data);
void __attribute__((noreturn)) fuzz_exit(void);
#define helper_exit() fuzz_exit()
#else
#define helper_exit() _exit(1)
#endif

/* util.c */
void send_msg(int type, int val, const char *data);
void __attribute__((noreturn, format(printf, 1, 2))) setup_fail(const char *fmt, ...);
void __attribute__((noreturn)) fail_msg(int type, int val, const char *data);
ssize_t read_all(int fd, char **out, size_t max);
int write_full(int fd, const void *p, size_t n);
int parse_ulong(const char *s, unsigned long long *v);
void push(char ***list, int *n, char *v);
const char *env_get(struct config *c, const char *key);
const char *go_errstr(int e);

/* seccomp.c */
void load_filter_file(const char *path, struct filters *f);
void apply_filters(struct filters *f);
int filter_main(const char *pidstr);

/* user.c */
void setup_user(struct config *c);
char *lookpath(struct config *c);
int runc_eaccess(const char *path);

#endif
