/* test_rt_state.c: the kvm runtime's RuntimeState out of and back into the live reference guest, 8 rounds; corrupted states refused while the guest runs on */
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
#include "personality_kvm.h"
#include "personality_kvm_state.h"
#include "runtime_state.h"
#include "stream.pb-c.h"
#include "../lib/test_vm.h"

/*
 * Boots guest.elf with --personality kvm semantics (window, runtime, host
 * channel, a DP83820 whose peer is a socket we hold, so the runtime has
 * every model), then while the workload runs, ROUNDS times: pause, save
 * RuntimeState, check that protobuf decodes and re-encodes it byte for
 * byte and that state/runtime_state does too, load it back into the live
 * runtime (CPU model + every device model through protobuf), resume.  On
 * two of the rounds, corrupted copies are loaded first and must be refused
 * with a message naming the field, changing nothing: three by the host's
 * checks, one (a PCI identity the runtime did not attach) by the runtime's
 * own all-or-nothing restore, which keeps every model as it was.  The console must end
 * with workload_ref's line and the guest must power off with 0.
 */
#define ROUNDS 8
#define ARGS "seed=5 steps=6000"

/* A load changes the live models: a state with another UART scratch byte
 * (the guest never reads it) goes in, and the next save has it. */
static int check_load_applies(struct vm *vm, const uint8_t *buf, size_t len, char *why,
			      size_t whylen)
{
	Pvmigrate__RuntimeState *m = pvmigrate__runtime_state__unpack(NULL, len, buf), *m2 = NULL;
	uint8_t *edited = NULL, *again = NULL;
	size_t n, n2;
	uint32_t scr;
	int rc = -1;

	if (!m)
		return snprintf(why, whylen, "cannot decode the saved state"), -1;
	scr = m->devices->uart16550->scr ^ 0x5a;
	m->devices->uart16550->scr = scr;
	n = pvmigrate__runtime_state__get_packed_size(m);
	if (!(edited = malloc(n)))
		goto out;
	pvmigrate__runtime_state__pack(m, edited);
	if (vm__kvm_state_load(vm, edited, n) < 0) {
		snprintf(why, whylen, "an edited but valid state: %s", vm->err);
		goto out;
	}
	if (vm__kvm_state_save(vm, &again, &n2) < 0) {
		snprintf(why, whylen, "save after load: %s", vm->err);
		goto out;
	}
	m2 = pvmigrate__runtime_state__unpack(NULL, n2, again);
	if (!m2 || m2->devices->uart16550->scr != scr) {
		snprintf(why, whylen, "the runtime's UART scratch is %#x after loading %#x",
			 m2 ? m2->devices->uart16550->scr : 0u, scr);
		goto out;
	}
	printf("test_rt_state: a loaded UART scratch byte %#x is what the runtime saves next\n",
	       scr);
	rc = 0;
out:
	pvmigrate__runtime_state__free_unpacked(m, NULL);
	if (m2)
		pvmigrate__runtime_state__free_unpacked(m2, NULL);
	free(edited);
	free(again);
	return rc;
}

/* The saved bytes, decoded, changed by (edit), re-encoded. */
static uint8_t *corrupt(const uint8_t *buf, size_t len, int edit, size_t *outlen)
{
	Pvmigrate__RuntimeState *m = pvmigrate__runtime_state__unpack(NULL, len, buf);
	uint8_t *out;

	if (!m)
		return NULL;
	if (edit == 0)
		m->layout_version += 1; /* a device-state layout this host does not know */
	else if (edit == 1)
		m->devices->i8259->master->vector_base = 300; /* not a u8 */
	else if (edit == 2)
		m->devices->i8259->master->vector_base = 0x21; /* a u8, but ICW2 has 3 low bits 0 */
	else /* another device ID in the NIC's slot: only the runtime knows what it attached */
		for (size_t i = 0; i < m->devices->pci->n_function; i++)
			if (m->devices->pci->function[i]->slot != 0)
				m->devices->pci->function[i]->config.data[2] ^= 0xff;
	*outlen = pvmigrate__runtime_state__get_packed_size(m);
	out = malloc(*outlen);
	if (out)
		pvmigrate__runtime_state__pack(m, out);
	pvmigrate__runtime_state__free_unpacked(m, NULL);
	return out;
}

#define CORRUPTIONS 4
static const char *const refusal_field[CORRUPTIONS] = { "layout_version", "vector_base", "i8259",
							"runtime refused" };

/* Protobuf and our converter both give back exactly the saved bytes. */
static unsigned nvcpus = 1;

static int check_reencode(const uint8_t *buf, size_t len, char *why, size_t whylen)
{
	Pvmigrate__RuntimeState *m = pvmigrate__runtime_state__unpack(NULL, len, buf);
	struct runtime_state *rs = calloc(1, sizeof *rs);
	uint8_t *again = NULL, *again2 = NULL;
	size_t n, n2 = 0;
	int rc = -1;

	if (!m || !rs) {
		snprintf(why, whylen, "protobuf-c does not decode the %zu saved bytes", len);
		goto out;
	}
	n = pvmigrate__runtime_state__get_packed_size(m);
	again = malloc(n);
	if (!again || pvmigrate__runtime_state__pack(m, again) != len || memcmp(again, buf, len)) {
		snprintf(why, whylen, "protobuf-c re-encodes %zu bytes differently", len);
		goto out;
	}
	if (m->n_cpus != nvcpus || !m->devices || !m->devices->dp83820 || !m->cpus[0]->has_vif ||
	    m->cpus[0]->n_regs != 18) {
		snprintf(why, whylen, "the state lacks a part (%zu cpus, devices %p)", m->n_cpus,
			 (void *)m->devices);
		goto out;
	}
	if (runtime_state_unpack(buf, len, rs, why, whylen) < 0 ||
	    runtime_state_pack(rs, &again2, &n2, why, whylen) < 0)
		goto out;
	if (n2 != len || memcmp(again2, buf, len)) {
		snprintf(why, whylen, "runtime_state re-encodes %zu bytes as %zu different ones", len,
			 n2);
		goto out;
	}
	for (size_t i = 0; i < m->n_cpus; i++)
		printf("test_rt_state: vCPU %zu: online %u parked %u vif %u idt %#llx/%#x rip %#llx\n", i,
		       m->cpus[i]->online, m->cpus[i]->parked, m->cpus[i]->vif,
		       (unsigned long long)m->cpus[i]->idt_base, m->cpus[i]->idt_limit,
		       (unsigned long long)m->cpus[i]->regs[16]);
	rc = 0;
out:
	if (m)
		pvmigrate__runtime_state__free_unpacked(m, NULL);
	free(rs);
	free(again);
	free(again2);
	return rc;
}

int main(int argc, char **argv)
{
	char cause[512], want[256], text[65536], sock[128];
	struct sockaddr_un sa;
	const char *why;
	struct timespec nap = { 0, 60 * 1000000 };
	struct vm *vm;
	pthread_t t;
	uint8_t *buf = NULL, *bad;
	size_t len = 0, badlen;
	FILE *con;
	int lfd, round, loaded = 0, refused = 0, k;
	uint64_t t0;

	if (argc != 4 && argc != 5)
		return test_fail("usage", "test_rt_state GUEST-ELF WORKLOAD-REF RUNTIME-ELF [VCPUS]");
	if (argc == 5)
		nvcpus = (unsigned)atoi(argv[4]);
	if (test_no_kvm())
		return TEST_SKIP;
	if (test_workload_ref(argv[2], ARGS, want, sizeof want, cause, sizeof cause) < 0)
		return test_fail("workload_ref", cause);
	if ((lfd = test_nic_peer(&sa, sock, sizeof sock)) < 0)
		return test_fail("peer socket", strerror(errno));
	if (!(vm = test_vm_new(64ull << 20, nvcpus, argv[3], sock, &con, cause, sizeof cause)))
		return test_fail("create VM", cause);
	if (test_vm_load(vm, argv[1], ARGS) < 0)
		return test_fail("boot under kvm", vm->err);
	unlink(sa.sun_path);
	pthread_create(&t, NULL, test_vm_runner, vm);
	/* Let it boot and start its workload: the rounds hit it in user and
	 * kernel mode, with ticks and system calls flowing. */
	if (test_console_wait(con, "user: running in ring 3", 30) < 0)
		return test_fail("boot", "the workload did not start within 30 s");
	for (round = 0; round < ROUNDS; round++) {
		nanosleep(&nap, NULL);
		if (vm__pause(vm) < 0)
			break; /* the guest already finished */
		free(buf);
		t0 = vm__now_ns();
		if (vm__kvm_state_save(vm, &buf, &len) < 0)
			return test_fail("vm__kvm_state_save", vm->err);
		if (check_reencode(buf, len, cause, sizeof cause) < 0)
			return test_fail("decode/re-encode", cause);
		if (round == 1 || round == 4) {
			for (k = 0; k < CORRUPTIONS; k++) {
				bad = corrupt(buf, len, k, &badlen);
				if (!bad)
					return test_fail("corrupt", "could not decode the saved state");
				if (vm__kvm_state_load(vm, bad, badlen) == 0)
					return test_fail("refusal", refusal_field[k]);
				if (!strstr(vm->err, refusal_field[k]))
					return test_fail("refusal message", vm->err);
				if (round == 1)
					printf("test_rt_state: refused: %s\n", vm->err);
				free(bad);
				refused++;
			}
		}
		if (round == 2 && check_load_applies(vm, buf, len, cause, sizeof cause) < 0)
			return test_fail("load applies", cause);
		if (vm__kvm_state_load(vm, buf, len) < 0)
			return test_fail("vm__kvm_state_load", vm->err);
		loaded++;
		printf("test_rt_state: round %d: save + load %.1f ms\n", round,
		       (double)(vm__now_ns() - t0) / 1e6);
		vm__resume(vm);
	}
	pthread_join(t, NULL);
	vm__kvm_host_finish(vm);
	printf("test_rt_state: %d save/load rounds of %zu-byte RuntimeStates while running, "
	       "%d corrupted states refused\n", loaded, len, refused);
	if (test_vm_check_end(vm, con, want, &why) < 0)
		return test_fail("the guest's end", why);
	if (loaded < ROUNDS)
		return test_fail("rounds", "the guest finished before 8 round trips (make ARGS longer)");
	if (refused < 2 * CORRUPTIONS)
		return test_fail("refusals", "fewer corrupted states were tried than planned");
	if (getenv("TEST_RT_STATE_CONSOLE")) {
		test_console(con, text, sizeof text);
		fputs(text, stdout);
	}
	printf("test_rt_state: ok: %s", want);
	vm__destroy(vm);
	free(buf);
	close(lfd);
	return 0;
}
