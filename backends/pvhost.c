/* pvhost.c: run one guest in the foreground on the kvm backend (console on stdout, guest's status as ours) */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend.h"

/*
 * Exit status: the guest's power-off value (0..255, see docs/KVM-HOST.md),
 * 70 if the guest crashed or halted for good, 2 for usage errors and
 * unavailable personalities, 1 when pvhost itself could not act.
 */
#define EXIT_USAGE 2
#define EXIT_GUEST_FAILED 70

static void usage(FILE *out)
{
	fprintf(out,
		"usage: pvhost run --personality native [--vcpus N] [--memory SIZE]\n"
		"                  [--initrd FILE] [--net socket:PATH|tap:IFNAME] [--stats]\n"
		"                  [--no-syscall-fix]\n"
		"                  IMAGE [-- GUEST-ARGS...]\n"
		"       pvhost caps\n"
		"IMAGE is a Multiboot ELF (entered in 32-bit mode) or a Linux bzImage\n"
		"(64-bit boot protocol). SIZE takes K, M or G; default 256M.\n"
		"--net attaches a DP83820 (PCI 00:03.0, irq 11) to a frame socket whose\n"
		"peer listens at PATH, or to tap device IFNAME. --stats prints exit counts.\n"
		"--no-syscall-fix leaves ring-3 syscalls that this host does not switch to\n"
		"ring 0 to the guest (docs/KVM-HOST.md), for comparison.\n");
}

static int die(const char *action, const char *reason)
{
	fprintf(stderr, "pvhost: %s failed: %s\n", action, reason);
	return 1;
}

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	switch (*end) {
	case 'G': case 'g': v <<= 10; /* fall through */
	case 'M': case 'm': v <<= 10; /* fall through */
	case 'K': case 'k': v <<= 10; end++; break;
	case '\0': break;
	default: return -1;
	}
	if (*end)
		return -1;
	*out = v;
	return 0;
}

/* A bzImage carries "HdrS" at 0x202; anything else goes to Multiboot. */
static int is_bzimage(const char *path)
{
	unsigned char b[0x206];
	FILE *f = fopen(path, "rb");
	int yes = 0;

	if (f) {
		yes = fread(b, 1, sizeof b, f) == sizeof b && memcmp(b + 0x202, "HdrS", 4) == 0;
		fclose(f);
	}
	return yes;
}

/*
 * SIGUSR1: print vCPU 0's RIP (and RSP, RFLAGS, CR3) on stderr, to see where
 * a slow guest spends its time (`kill -USR1` it in a loop; a Linux guest's
 * addresses can then be looked up in its kallsyms).  The signal is blocked
 * in every thread (SIGUSR2 and SIGTERM too, see below) and taken by this one with sigwait(), so the pause it
 * needs happens in an ordinary thread, not in a handler.
 */
struct sampler {
	struct vm *vm;
	int done;
};

static void *sampler_thread(void *arg)
{
	struct sampler *sp = arg;
	struct vm *vm = sp->vm;
	struct vm_vcpu_state st;
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, SIGTERM);
	while (sigwait(&set, &sig) == 0 && !__atomic_load_n(&sp->done, __ATOMIC_ACQUIRE)) {
		/* SIGUSR2: exit counters so far (a benchmark brackets a phase);
		 * SIGTERM: power off, so the end-of-run report still prints. */
		if (sig == SIGUSR2) {
			fprintf(stderr, "pvhost: exits: %llu pio, %llu mmio\n",
				(unsigned long long)__atomic_load_n(&vm->nr_pio_exits, __ATOMIC_RELAXED),
				(unsigned long long)__atomic_load_n(&vm->nr_mmio_exits, __ATOMIC_RELAXED));
			continue;
		}
		if (sig == SIGTERM) {
			vm__poweroff(vm, VM_EXIT_POWEROFF, 128 + SIGTERM);
			continue;
		}
		/* Once the guest ended, vm__pause would overwrite vm->err. */
		if (__atomic_load_n(&vm->exit_kind, __ATOMIC_ACQUIRE) != VM_EXIT_NONE)
			continue;
		if (vm__pause(vm) < 0)
			continue;
		if (vm__get_vcpu_state(vm, 0, &st) == 0)
			fprintf(stderr, "pvhost: sample %.3f s rip %#llx rsp %#llx rflags %#llx cr3 %#llx\n",
				(double)vm__now_ns() / 1e9, (unsigned long long)st.rip,
				(unsigned long long)st.gpr[VM_RSP], (unsigned long long)st.rflags,
				(unsigned long long)st.cr3);
		vm__resume(vm);
	}
	return NULL;
}

/* COM1 input comes from stdin when something can type or pipe into it;
 * /dev/null and regular files are left alone (a test's stdin). */
static int stdin_is_input(void)
{
	struct stat st;

	if (fstat(STDIN_FILENO, &st) < 0)
		return 0;
	return S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) || isatty(STDIN_FILENO);
}

static char *join_args(const char *first, int argc, char **argv)
{
	size_t len = first ? strlen(first) + 1 : 1;
	char *s;
	int i;

	for (i = 0; i < argc; i++)
		len += strlen(argv[i]) + 1;
	s = malloc(len);
	if (!s)
		return NULL;
	s[0] = '\0';
	if (first)
		strcat(s, first);
	for (i = 0; i < argc; i++) {
		if (s[0])
			strcat(s, " ");
		strcat(s, argv[i]);
	}
	return s;
}

static int cmd_run(int argc, char **argv)
{
	const char *personality = NULL, *image = NULL, *initrd = NULL, *net = NULL;
	uint64_t mem = 256ull << 20;
	unsigned long vcpus = 1;
	char cause[256], *cmdline;
	struct vm *vm;
	struct sampler samp;
	pthread_t sthread;
	sigset_t usr1;
	int i, rc, linux_boot, stats = 0, no_sysfix = 0;

	for (i = 0; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--") == 0) {
			i++;
			break;
		} else if (strcmp(a, "--personality") == 0 && i + 1 < argc) {
			personality = argv[++i];
		} else if (strcmp(a, "--vcpus") == 0 && i + 1 < argc) {
			char *end;

			vcpus = strtoul(argv[++i], &end, 10);
			if (*end || vcpus < 1 || vcpus > VM_MAX_VCPUS) {
				fprintf(stderr, "pvhost: --vcpus takes 1 .. %d\n", VM_MAX_VCPUS);
				return EXIT_USAGE;
			}
		} else if (strcmp(a, "--memory") == 0 && i + 1 < argc) {
			if (parse_size(argv[++i], &mem) < 0) {
				fprintf(stderr, "pvhost: --memory: bad size '%s'\n", argv[i]);
				return EXIT_USAGE;
			}
		} else if (strcmp(a, "--initrd") == 0 && i + 1 < argc) {
			initrd = argv[++i];
		} else if (strcmp(a, "--stats") == 0) {
			stats = 1;
		} else if (strcmp(a, "--no-syscall-fix") == 0) {
			no_sysfix = 1;
		} else if (strcmp(a, "--net") == 0 && i + 1 < argc) {
			net = argv[++i];
		} else if (a[0] == '-' || image) {
			usage(stderr);
			return EXIT_USAGE;
		} else {
			image = a;
		}
	}
	if (!image || !personality) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(personality, "native") != 0) {
		fprintf(stderr, "pvhost: personality '%s' is not available yet\n", personality);
		return EXIT_USAGE;
	}
	linux_boot = is_bzimage(image);
	/* Multiboot: like QEMU, the image name is the first word. */
	cmdline = linux_boot && i >= argc ? strdup("console=ttyS0 earlyprintk=serial")
					  : join_args(linux_boot ? NULL : image, argc - i, argv + i);
	if (!cmdline)
		return die("run", "out of memory");
	vm = vm__create(&vm_kvm_ops, mem, (unsigned)vcpus, cause, sizeof cause);
	if (!vm) {
		free(cmdline);
		return die("create VM", cause);
	}
	vm->sysfix_off = no_sysfix;
	/* Before any vCPU thread exists, so they all inherit the mask. */
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigaddset(&usr1, SIGUSR2);
	sigaddset(&usr1, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &usr1, NULL);
	samp.vm = vm;
	samp.done = 0;
	if (vm__platform_init(vm, STDOUT_FILENO) < 0) {
		rc = die("create platform", vm->err);
		goto out;
	}
	if (stdin_is_input())
		vm__platform_console_input(vm, STDIN_FILENO);
	if (net && vm__platform_add_nic(vm, net) < 0) {
		rc = die("attach NIC", vm->err);
		goto out;
	}
	if ((linux_boot ? vm__load_linux(vm, image, initrd, cmdline)
			: vm__load_multiboot(vm, image, cmdline)) < 0) {
		rc = die("load guest", vm->err);
		goto out;
	}
	if (pthread_create(&sthread, NULL, sampler_thread, &samp) == 0) {
		vm__run(vm);
		__atomic_store_n(&samp.done, 1, __ATOMIC_RELEASE);
		pthread_kill(sthread, SIGUSR1);
		pthread_join(sthread, NULL);
	} else {
		vm__run(vm);
	}
	vm__platform_report(vm, stderr);
	if (stats) {
		fprintf(stderr, "pvhost: exits: %llu pio, %llu mmio\n",
			(unsigned long long)vm->nr_pio_exits, (unsigned long long)vm->nr_mmio_exits);
		fprintf(stderr, "pvhost: syscall fix: %llu system calls completed by the host, "
			"%llu other faults passed to the guest (%llu hooks placed, %llu handlers declined)\n",
			(unsigned long long)vm->nr_sysfix_completed,
			(unsigned long long)vm->nr_sysfix_passed,
			(unsigned long long)vm->nr_sysfix_hooks,
			(unsigned long long)vm->nr_sysfix_refused);
	}
	switch (vm->exit_kind) {
	case VM_EXIT_POWEROFF:
		rc = vm->exit_status;
		break;
	case VM_EXIT_HALTED:
		fprintf(stderr, "pvhost: guest halted with interrupts disabled\n");
		rc = EXIT_GUEST_FAILED;
		break;
	default:
		fprintf(stderr, "pvhost: guest failed: %s\n", vm->err);
		rc = EXIT_GUEST_FAILED;
		break;
	}
out:
	vm__destroy(vm);
	free(cmdline);
	return rc;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	if (argc >= 2 && strcmp(argv[1], "run") == 0)
		return cmd_run(argc - 2, argv + 2);
	if (argc == 2 && strcmp(argv[1], "caps") == 0)
		return kvm__report_caps(stdout) < 0 ? die("probe KVM", strerror(errno)) : 0;
	if (argc == 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		usage(stdout);
		return 0;
	}
	usage(stderr);
	return EXIT_USAGE;
}
