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
#include "../lib/test_vm.h"

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

int main(int argc, char **argv)
{
	char cause[512], want[256], net[128], *why = NULL;
	const char *end_why;
	struct sockaddr_un sa;
	struct devset set;
	struct vm *vm;
	pthread_t t;
	uint8_t *buf;
	size_t len;
	FILE *con;
	int lfd, round, restored = 0;
	struct timespec nap = { 0, 80 * 1000000 };

	if (argc != 3)
		return test_fail("usage", "test_devsave GUEST-ELF WORKLOAD-REF");
	if (test_no_kvm())
		return TEST_SKIP;
	if (test_workload_ref(argv[2], ARGS, want, sizeof want, cause, sizeof cause) < 0)
		return test_fail("workload_ref", cause);

	if ((lfd = test_nic_peer(&sa, net, sizeof net)) < 0)
		return test_fail("peer socket", strerror(errno));
	if (!(vm = test_vm_new(64ull << 20, 1, NULL, net, &con, cause, sizeof cause)))
		return test_fail("create VM", cause);
	if (test_vm_load(vm, argv[1], ARGS) < 0)
		return test_fail("boot", vm->err);
	unlink(sa.sun_path);
	vm__platform_devset(vm, &set);
	if (!set.pic || !set.pit || !set.uart || !set.pci || !set.nic)
		return test_fail("devset", "a model is missing");
	pthread_create(&t, NULL, test_vm_runner, vm);

	for (round = 0; round < ROUNDS; round++) {
		nanosleep(&nap, NULL);
		if (vm__pause(vm) < 0)
			break; /* the guest already finished */
		pthread_mutex_lock(&vm->dev_lock);
		if (devstate_save(&set, &buf, &len, &why) < 0) {
			pthread_mutex_unlock(&vm->dev_lock);
			return test_fail("devstate_save", why);
		}
		if (devstate_restore(&set, buf, len, cause, sizeof cause) < 0) {
			pthread_mutex_unlock(&vm->dev_lock);
			return test_fail("devstate_restore", cause);
		}
		pthread_mutex_unlock(&vm->dev_lock);
		free(buf);
		restored++;
		vm__resume(vm);
	}
	pthread_join(t, NULL);
	printf("test_devsave: %d save/restore rounds of %zu-byte DeviceSets while running\n",
	       restored, len);
	if (test_vm_check_end(vm, con, want, &end_why) < 0)
		return test_fail("the guest's end", end_why);
	if (restored < 2)
		return test_fail("rounds", "the guest finished before two restores");
	printf("test_devsave: ok: %s", want);
	vm__destroy(vm);
	return 0;
}
