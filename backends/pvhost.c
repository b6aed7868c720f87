/* pvhost.c: run one guest in the foreground on the kvm backend (console on stdout, guest's status as ours) */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
		"                  [--initrd FILE] IMAGE [-- GUEST-ARGS...]\n"
		"       pvhost caps\n"
		"IMAGE is a Multiboot ELF (entered in 32-bit mode) or a Linux bzImage\n"
		"(64-bit boot protocol). SIZE takes K, M or G; default 256M.\n");
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
	const char *personality = NULL, *image = NULL, *initrd = NULL;
	uint64_t mem = 256ull << 20;
	unsigned long vcpus = 1;
	char cause[256], *cmdline;
	struct vm *vm;
	int i, rc, linux_boot;

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
	if (vm__platform_init(vm, STDOUT_FILENO) < 0 ||
	    (linux_boot ? vm__load_linux(vm, image, initrd, cmdline)
			: vm__load_multiboot(vm, image, cmdline)) < 0) {
		rc = die("load guest", vm->err);
		goto out;
	}
	vm__run(vm);
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
