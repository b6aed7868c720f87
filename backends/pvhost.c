/* pvhost.c: run one guest in the foreground on the kvm backend, native or on the kvm personality's runtime (console on stdout, guest's status as ours) */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend.h"
#include "personality_kvm.h"
#include "pvhost_debug.h"
#include "size_arg.h"
#include "rt_abi.h"

/*
 * Exit status: the guest's power-off value (0..255, see docs/KVM-HOST.md),
 * 70 if the guest crashed or halted for good (under kvm also: the runtime
 * failed), 2 for usage errors and unavailable personalities, 1 when pvhost
 * itself could not act or --park-test found a vCPU outside a safe point.
 */
#define EXIT_USAGE 2
#define EXIT_GUEST_FAILED 70

static void usage(FILE *out)
{
	fprintf(out,
		"usage: pvhost run --personality native|kvm [--vcpus N] [--memory SIZE]\n"
		"                  [--initrd FILE] [--net socket:PATH|tap:IFNAME] [--stats]\n"
		"                  [--no-syscall-fix] [--runtime FILE] [--park-test MS]\n"
		"                  [--dump-ram FILE]\n"
		"                  IMAGE [-- GUEST-ARGS...]\n"
		"       pvhost caps\n"
		"IMAGE is a Multiboot ELF (entered in 32-bit mode) or, under native, a Linux\n"
		"bzImage (64-bit boot protocol). SIZE takes K, M or G; default 256M.\n"
		"--net attaches a DP83820 (PCI 00:03.0, irq 11) to a frame socket whose\n"
		"peer listens at PATH, or to tap device IFNAME. --stats prints exit counts.\n"
		"--no-syscall-fix leaves ring-3 syscalls that this host does not switch to\n"
		"ring 0 to the guest (docs/KVM-HOST.md), for comparison.\n"
		"kvm: the image runs on the in-guest runtime (docs/RUNTIME.md), loaded from\n"
		"--runtime FILE, else $PVMIGRATE_RUNTIME, else the build's or the installed\n"
		"pvruntime-kvm.elf; RAM must end below 1022 MiB; the console is output only.\n"
		"--park-test MS pauses every MS ms and checks each vCPU is at a safe point.\n"
		"--dump-ram FILE writes guest RAM to FILE when the guest ends, and to\n"
		"FILE.<n> on each SIGUSR2.\n");
}

static int die(const char *action, const char *reason)
{
	fprintf(stderr, "pvhost: %s failed: %s\n", action, reason);
	return 1;
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

struct run_opts {
	const char *personality, *image, *initrd, *net, *runtime, *dump_ram;
	uint64_t mem;
	unsigned long vcpus, park_ms;
	int stats, no_sysfix, kvm;
};

static int parse_run(int argc, char **argv, struct run_opts *o, int *first_arg)
{
	static const char *const available[] = { "kvm", "native" };
	int i;
	unsigned k;

	memset(o, 0, sizeof *o);
	o->mem = 256ull << 20;
	o->vcpus = 1;
	for (i = 0; i < argc; i++) {
		const char *a = argv[i];
		char *end;

		if (strcmp(a, "--") == 0) {
			i++;
			break;
		} else if (strcmp(a, "--personality") == 0 && i + 1 < argc) {
			o->personality = argv[++i];
		} else if (strcmp(a, "--vcpus") == 0 && i + 1 < argc) {
			o->vcpus = strtoul(argv[++i], &end, 10);
			if (*end || o->vcpus < 1 || o->vcpus > VM_MAX_VCPUS) {
				fprintf(stderr, "pvhost: --vcpus takes 1 .. %d\n", VM_MAX_VCPUS);
				return -1;
			}
		} else if (strcmp(a, "--memory") == 0 && i + 1 < argc) {
			if (size_arg__parse(argv[++i], &o->mem) < 0) {
				fprintf(stderr, "pvhost: --memory: bad size '%s'\n", argv[i]);
				return -1;
			}
		} else if (strcmp(a, "--park-test") == 0 && i + 1 < argc) {
			o->park_ms = strtoul(argv[++i], &end, 10);
			if (*end || o->park_ms < 1 || o->park_ms > 3600000) {
				fprintf(stderr, "pvhost: --park-test takes 1 .. 3600000 (ms)\n");
				return -1;
			}
		} else if (strcmp(a, "--initrd") == 0 && i + 1 < argc) {
			o->initrd = argv[++i];
		} else if (strcmp(a, "--runtime") == 0 && i + 1 < argc) {
			o->runtime = argv[++i];
		} else if (strcmp(a, "--dump-ram") == 0 && i + 1 < argc) {
			o->dump_ram = argv[++i];
		} else if (strcmp(a, "--stats") == 0) {
			o->stats = 1;
		} else if (strcmp(a, "--no-syscall-fix") == 0) {
			o->no_sysfix = 1;
		} else if (strcmp(a, "--net") == 0 && i + 1 < argc) {
			o->net = argv[++i];
		} else if (a[0] == '-' || o->image) {
			usage(stderr);
			return -1;
		} else {
			o->image = a;
		}
	}
	if (!o->image || !o->personality) {
		usage(stderr);
		return -1;
	}
	for (k = 0; k < sizeof available / sizeof available[0]; k++)
		if (strcmp(o->personality, available[k]) == 0)
			break;
	if (k == sizeof available / sizeof available[0]) {
		fprintf(stderr, "pvhost: personality '%s' is not available on this host "
			"(kvm, native are)\n", o->personality);
		return -1;
	}
	o->kvm = strcmp(o->personality, "kvm") == 0;
	if (o->kvm && o->initrd) {
		fprintf(stderr, "pvhost: --initrd: the kvm personality boots Multiboot images only\n");
		return -1;
	}
	if (!o->kvm && o->runtime) {
		fprintf(stderr, "pvhost: --runtime: only the kvm personality has a runtime\n");
		return -1;
	}
	*first_arg = i;
	return 0;
}

/* Under kvm: the host half of the runtime's channel replaces the trapped
 * devices.  On failure *action names the step, for "pvhost: ACTION failed". */
static int setup_kvm(struct vm *vm, const struct run_opts *o, const char *cmdline,
		     const char **action)
{
	struct vm_kvm_host_cfg cfg = { .net = o->net, .console_fd = STDOUT_FILENO };

	*action = "attach the kvm runtime";
	cfg.runtime = o->runtime; /* NULL: attach looks it up */
	if (vm__platform_init_ports(vm) < 0) {
		*action = "create platform";
		return -1;
	}
	if (vm__kvm_host_attach(vm, &cfg) < 0)
		return -1;
	if (stdin_is_input())
		fprintf(stderr, "pvhost: kvm: console input is not available (the channel has "
			"no input ring); stdin is ignored\n");
	*action = "load guest";
	return vm__kvm_host_boot(vm, o->image, cmdline);
}

static int setup_native(struct vm *vm, const struct run_opts *o, const char *cmdline,
			int linux_boot, const char **action)
{
	*action = "create platform";
	if (vm__platform_init(vm, STDOUT_FILENO) < 0)
		return -1;
	if (stdin_is_input())
		vm__platform_console_input(vm, STDIN_FILENO);
	*action = "attach NIC";
	if (o->net && vm__platform_add_nic(vm, o->net) < 0)
		return -1;
	*action = "load guest";
	return linux_boot ? vm__load_linux(vm, o->image, o->initrd, cmdline)
			  : vm__load_multiboot(vm, o->image, cmdline);
}

static void print_stats(struct vm *vm)
{
	const struct vm_exit_counts *e = &vm->exits;
	char rt[512];

	fprintf(stderr, "pvhost: exits: %llu pio, %llu mmio\n",
		(unsigned long long)vm->nr_pio_exits, (unsigned long long)vm->nr_mmio_exits);
	fprintf(stderr, "pvhost: syscall fix: %llu system calls completed by the host, "
		"%llu other faults passed to the guest (%llu hooks placed, %llu handlers declined)\n",
		(unsigned long long)vm->nr_sysfix_completed,
		(unsigned long long)vm->nr_sysfix_passed,
		(unsigned long long)vm->nr_sysfix_hooks,
		(unsigned long long)vm->nr_sysfix_refused);
	vm__kvm_host_counters(vm, rt, sizeof rt);
	fprintf(stderr, "pvhost: stats: exits=%llu io=%llu mmio=%llu hlt=%llu window=%llu "
		"intr=%llu other=%llu%s\n", (unsigned long long)vm__exit_total(vm),
		(unsigned long long)e->io, (unsigned long long)e->mmio,
		(unsigned long long)e->hlt, (unsigned long long)e->window,
		(unsigned long long)e->intr, (unsigned long long)e->other, rt);
}

static int cmd_run(int argc, char **argv)
{
	struct run_opts o;
	char cause[256], why[300], *cmdline;
	const char *action = "run";
	struct vm *vm;
	struct sampler *samp = NULL;
	struct park_test *park = NULL;
	sigset_t usr1;
	int i, rc, linux_boot, park_rc = 0;

	if (parse_run(argc, argv, &o, &i) < 0)
		return EXIT_USAGE;
	linux_boot = vm__is_bzimage(o.image);
	if (o.kvm && linux_boot) {
		fprintf(stderr, "pvhost: %s is a Linux bzImage: the kvm personality boots "
			"Multiboot images only\n", o.image);
		return EXIT_USAGE;
	}
	/* Multiboot: like QEMU, the image name is the first word. */
	cmdline = linux_boot && i >= argc ? strdup("console=ttyS0 earlyprintk=serial")
					  : join_args(linux_boot ? NULL : o.image, argc - i, argv + i);
	if (!cmdline)
		return die("run", "out of memory");
	if (o.kvm && o.mem > RT_WINDOW_BASE) {
		fprintf(stderr, "pvhost: --memory: under kvm guest RAM must end below the runtime "
			"window at %#llx (at most %llu MiB)\n", (unsigned long long)RT_WINDOW_BASE,
			(unsigned long long)(RT_WINDOW_BASE >> 20));
		free(cmdline);
		return EXIT_USAGE;
	}
	vm = vm__create(&vm_kvm_ops, o.mem, (unsigned)o.vcpus, cause, sizeof cause);
	if (!vm) {
		free(cmdline);
		return die("create VM", cause);
	}
	vm->sysfix_off = o.no_sysfix;
	/* Before any vCPU thread exists, so they all inherit the mask. */
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigaddset(&usr1, SIGUSR2);
	sigaddset(&usr1, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &usr1, NULL);
	if ((o.kvm ? setup_kvm(vm, &o, cmdline, &action)
		   : setup_native(vm, &o, cmdline, linux_boot, &action)) < 0) {
		rc = die(action, vm->err);
		goto out;
	}
	if (o.park_ms) {
		park = park_test_start(vm, o.personality, o.image, (unsigned)o.park_ms, why,
				       sizeof why);
		if (!park) {
			rc = die("start the park test", why);
			goto out;
		}
	}
	samp = sampler_start(vm, o.dump_ram); /* NULL: no signals, the run goes on */
	vm__run(vm);
	sampler_stop(samp);
	if (park)
		park_rc = park_test_stop(park);
	vm__kvm_host_finish(vm); /* what the runtime left in its rings */
	if (o.dump_ram) {
		if (pvhost_dump_ram(vm, o.dump_ram, why, sizeof why) < 0)
			fprintf(stderr, "pvhost: dump RAM failed: %s\n", why);
	}
	vm__platform_report(vm, stderr);
	vm__kvm_host_report(vm, stderr);
	if (o.stats)
		print_stats(vm);
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
	if (park_rc < 0 && rc == 0)
		rc = 1; /* the guest was fine, a pause was not at a safe point */
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
