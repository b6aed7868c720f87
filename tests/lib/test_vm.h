/* test_vm.h: the reference guest in a VM of the test program's own: the KVM check, workload_ref's line, a VM native or under the kvm runtime with its console in a temp file, waits on that console, and the check of the guest's end */
#ifndef TEST_VM_H
#define TEST_VM_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "personality_kvm.h"

/*
 * Header-only, as tap.h and test_frames.h: each test program is one .c
 * linking the VMM (backend_kvm_dep or migrate_dep), nothing else to link.
 * What can fail reports into why (or on stderr, said below) and returns
 * -1 or NULL: whether the test then returns or exits is the test's.
 */
#define TEST_SKIP 77 /* meson's exit status for a test that could not run here */

/* "PROGRAM: WHAT failed: WHY" on stderr; returns 1, the exit status. */
static inline int test_fail(const char *what, const char *why)
{
	fprintf(stderr, "%s: %s failed: %s\n", program_invocation_short_name, what, why);
	return 1;
}

/* 1 (and a SKIP line) when there is no /dev/kvm to use here. */
static inline int test_no_kvm(void)
{
	if (access("/dev/kvm", R_OK | W_OK) == 0)
		return 0;
	printf("SKIP: /dev/kvm: %s (no KVM host here)\n", strerror(errno));
	return 1;
}

static inline void test_sleep_ms(unsigned ms)
{
	struct timespec t = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&t, NULL);
}

/* The line workload_ref prints for `args` (the guest's last line when it
 * ran them right): 0, or -1 with the command in why. */
static inline int test_workload_ref(const char *ref_prog, const char *args, char *want,
				    size_t len, char *why, size_t whylen)
{
	char cmd[512];
	FILE *ref;
	int ok;

	snprintf(cmd, sizeof cmd, "%s %s", ref_prog, args);
	ref = popen(cmd, "r");
	ok = ref && fgets(want, (int)len, ref);
	if (ref)
		pclose(ref);
	if (!ok) {
		snprintf(why, whylen, "%.400s printed no line", cmd);
		return -1;
	}
	return 0;
}

/* The console from its first byte, at most len - 1 of them, NUL-ended. */
static inline void test_console(FILE *con, char *buf, size_t len)
{
	ssize_t n = pread(fileno(con), buf, len - 1, 0);

	buf[n > 0 ? n : 0] = 0;
}

/* The guest's progress lines ("tick=...") on the console so far. */
static inline int test_console_ticks(FILE *con)
{
	char text[65536], *p;
	int n = 0;

	test_console(con, text, sizeof text);
	for (p = text; (p = strstr(p, "\ntick=")); p++)
		n++;
	return n;
}

/* Up to `seconds` for more than `after` tick lines: 0, or -1. */
static inline int test_console_wait_ticks(FILE *con, int after, unsigned seconds)
{
	unsigned i;

	for (i = 0; i < seconds * 100; i++) {
		if (test_console_ticks(con) > after)
			return 0;
		test_sleep_ms(10);
	}
	return test_console_ticks(con) > after ? 0 : -1;
}

/* Up to `seconds` for `text` on the console: 0, or -1. */
static inline int test_console_wait(FILE *con, const char *text, unsigned seconds)
{
	char buf[65536];
	unsigned i;

	for (i = 0; i <= seconds * 100; i++) {
		test_console(con, buf, sizeof buf);
		if (strstr(buf, text))
			return 0;
		if (i < seconds * 100)
			test_sleep_ms(10);
	}
	return -1;
}

/* The far end of the guest's NIC: a listening SOCK_SEQPACKET socket at
 * /tmp/PROGRAM.PID.sock (in sa), net = "socket:PATH" for test_vm_new.
 * Its descriptor, or -1 with errno. */
static inline int test_nic_peer(struct sockaddr_un *sa, char *net, size_t netlen)
{
	int fd, err;

	*sa = (struct sockaddr_un){ .sun_family = AF_UNIX };
	snprintf(sa->sun_path, sizeof sa->sun_path, "/tmp/%s.%d.sock",
		 program_invocation_short_name, (int)getpid());
	unlink(sa->sun_path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)sa, sizeof *sa) < 0 || listen(fd, 1) < 0) {
		err = errno;
		if (fd >= 0)
			close(fd);
		errno = err;
		return -1;
	}
	snprintf(net, netlen, "socket:%s", sa->sun_path);
	return fd;
}

/*
 * A VM of `mem` bytes and `cpus` vCPUs, its console in a new temp file
 * (*con): `native` (every device trapped by the host) when runtime is
 * NULL, else under the kvm runtime loaded from that ELF.  With net
 * ("socket:PATH") the guest gets a NIC on it.  NULL with why on failure.
 */
static inline struct vm *test_vm_new(uint64_t mem, unsigned cpus, const char *runtime,
				     const char *net, FILE **con, char *why, size_t whylen)
{
	struct vm_kvm_host_cfg cfg = { .runtime = runtime, .net = net };
	struct vm *vm;
	int rc;

	if (!(*con = tmpfile())) {
		snprintf(why, whylen, "console file: %s", strerror(errno));
		return NULL;
	}
	if (!(vm = vm__create(&vm_kvm_ops, mem, cpus, why, whylen))) {
		fclose(*con);
		return NULL;
	}
	cfg.console_fd = fileno(*con);
	if (runtime)
		rc = vm__platform_init_ports(vm) < 0 || vm__kvm_host_attach(vm, &cfg) < 0;
	else
		rc = vm__platform_init(vm, fileno(*con)) < 0 ||
		     (net && vm__platform_add_nic(vm, net) < 0);
	if (rc) {
		snprintf(why, whylen, "%s: %.200s", runtime ? "kvm runtime" : "platform", vm->err);
		vm__destroy(vm);
		fclose(*con);
		return NULL;
	}
	return vm;
}

/* Load the guest ELF with "ELF ARGS" as its command line, through the
 * kvm runtime if the VM has one: 0, or -1 with vm->err. */
static inline int test_vm_load(struct vm *vm, const char *elf, const char *args)
{
	char cmdline[512];

	snprintf(cmdline, sizeof cmdline, "%s %s", elf, args);
	return vm->rt ? vm__kvm_host_boot(vm, elf, cmdline) : vm__load_multiboot(vm, elf, cmdline);
}

/* A thread's body: the VM runs until the guest ends. */
static inline void *test_vm_runner(void *vm)
{
	vm__run(vm);
	return NULL;
}

/*
 * The guest has ended right: powered off with status 0 and its console
 * holds `want` (workload_ref's line).  0, or -1 with the console on
 * stderr and the reason in *why.
 */
static inline int test_vm_check_end(struct vm *vm, FILE *con, const char *want, const char **why)
{
	char text[65536];

	test_console(con, text, sizeof text);
	if (vm->exit_kind != VM_EXIT_POWEROFF || vm->exit_status != 0)
		*why = vm->exit_kind == VM_EXIT_POWEROFF ? "powered off with failure" : vm->err;
	else if (!strstr(text, want))
		*why = "no workload_ref line on the console";
	else
		return 0;
	fprintf(stderr, "%s\n", text);
	return -1;
}

#endif
