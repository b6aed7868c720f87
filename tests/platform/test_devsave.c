/* test_devsave.c: the whole device set saved and restored through state/devstate while the reference guest runs; the workload still ends right */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "backend.h"
#include "devstate.h"

/*
 * Boots guest.elf with a DP83820 attached (its peer is a socket we hold,
 * so the device set has every model), then from this thread: pause,
 * devstate_save, devstate_restore into the same models, resume, a few
 * times while the workload runs.  The console must end with the line
 * workload_ref prints for the same arguments, and the guest must power
 * off with 0.  A restore that lost a PIC mask, a PIT phase or an ELCR bit
 * shows up as a hang, a missing tick or a different checksum.
 */
#define ROUNDS 8
#define ARGS "seed=5 steps=2000"

static void *runner(void *arg)
{
	vm__run(arg);
	return NULL;
}

static int fail(const char *what, const char *why)
{
	fprintf(stderr, "test_devsave: %s failed: %s\n", what, why);
	return 1;
}

int main(int argc, char **argv)
{
	char cause[256], cmdline[512], want[256], text[16384], *why = NULL;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct devset set;
	struct vm *vm;
	pthread_t t;
	uint8_t *buf;
	size_t len;
	FILE *ref, *con;
	int lfd, round, restored = 0;
	struct timespec nap = { 0, 80 * 1000000 };

	if (argc != 3)
		return fail("usage", "test_devsave GUEST-ELF WORKLOAD-REF");
	if (access("/dev/kvm", R_OK | W_OK) < 0) {
		printf("SKIP: /dev/kvm: %s (no KVM host here)\n", strerror(errno));
		return 77;
	}
	snprintf(cmdline, sizeof cmdline, "%s " ARGS, argv[2]);
	ref = popen(cmdline, "r");
	if (!ref || !fgets(want, sizeof want, ref))
		return fail("workload_ref", cmdline);
	pclose(ref);

	snprintf(sa.sun_path, sizeof sa.sun_path, "/tmp/test_devsave.%d.sock", (int)getpid());
	unlink(sa.sun_path);
	lfd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 1) < 0)
		return fail("peer socket", strerror(errno));
	con = tmpfile();
	vm = vm__create(&vm_kvm_ops, 64ull << 20, 1, cause, sizeof cause);
	if (!vm)
		return fail("create VM", cause);
	snprintf(cmdline, sizeof cmdline, "%s " ARGS, argv[1]);
	snprintf(text, sizeof text, "socket:%s", sa.sun_path);
	if (vm__platform_init(vm, fileno(con)) < 0 || vm__platform_add_nic(vm, text) < 0 ||
	    vm__load_multiboot(vm, argv[1], cmdline) < 0)
		return fail("boot", vm->err);
	unlink(sa.sun_path);
	vm__platform_devset(vm, &set);
	if (!set.pic || !set.pit || !set.uart || !set.pci || !set.nic)
		return fail("devset", "a model is missing");
	pthread_create(&t, NULL, runner, vm);

	for (round = 0; round < ROUNDS; round++) {
		nanosleep(&nap, NULL);
		if (vm__pause(vm) < 0)
			break; /* the guest already finished */
		pthread_mutex_lock(&vm->dev_lock);
		if (devstate_save(&set, &buf, &len, &why) < 0) {
			pthread_mutex_unlock(&vm->dev_lock);
			return fail("devstate_save", why);
		}
		if (devstate_restore(&set, buf, len, cause, sizeof cause) < 0) {
			pthread_mutex_unlock(&vm->dev_lock);
			return fail("devstate_restore", cause);
		}
		pthread_mutex_unlock(&vm->dev_lock);
		free(buf);
		restored++;
		vm__resume(vm);
	}
	pthread_join(t, NULL);

	memset(text, 0, sizeof text);
	if (pread(fileno(con), text, sizeof text - 1, 0) < 0)
		return fail("console", strerror(errno));
	printf("test_devsave: %d save/restore rounds of %zu-byte DeviceSets while running\n",
	       restored, len);
	if (vm->exit_kind != VM_EXIT_POWEROFF || vm->exit_status != 0) {
		fprintf(stderr, "%s\n", text);
		return fail("guest", vm->exit_kind == VM_EXIT_POWEROFF ? "powered off with failure"
									: vm->err);
	}
	if (!strstr(text, want)) {
		fprintf(stderr, "%s\n", text);
		return fail("checksum", want);
	}
	if (restored < 2)
		return fail("rounds", "the guest finished before two restores");
	printf("test_devsave: ok: %s", want);
	vm__destroy(vm);
	return 0;
}
