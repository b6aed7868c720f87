/* personality_kvm.h: the host half of the kvm personality as pvhost (and later the daemon) call it */
#ifndef PERSONALITY_KVM_H
#define PERSONALITY_KVM_H

#include <stdio.h>

#include "backend.h"

/*
 * personality_kvm_host.c, personality_kvm_channel.c: the host half of the
 * `kvm` personality (docs/RUNTIME.md).  attach creates the window, loads
 * the runtime ELF into it, and services the channel (doorbell port, the
 * upcall as the vm's interrupt source, the timer deadline, console and
 * frame rings, parking) instead of trapped device models; call it after
 * vm__platform_init_ports.  boot loads the guest as the Multiboot loader
 * does, fills the boot block and starts vCPU 0 in the runtime.  finish
 * drains what the runtime left in the console and TX rings (after
 * vm__run).  Report lines print nothing without an attached runtime.
 */
struct vm_kvm_host_cfg {
	const char *runtime; /* the runtime ELF; NULL: $PVMIGRATE_RUNTIME, this build's, the installed one */
	const char *net;     /* "socket:PATH", "tap:IFNAME" or NULL: no NIC */
	int console_fd;      /* where the console ring goes */
};
int vm__kvm_host_attach(struct vm *vm, const struct vm_kvm_host_cfg *cfg);
int vm__kvm_host_boot(struct vm *vm, const char *image, const char *cmdline);
void vm__kvm_host_finish(struct vm *vm);
/* " site_calls=N upcalls=N ..." for the stats line, "" without a runtime. */
void vm__kvm_host_counters(struct vm *vm, char *buf, size_t len);
/* Lines about the runtime's boot and the NIC, on (out). */
void vm__kvm_host_report(struct vm *vm, FILE *out);
/* 1 once the runtime reported its boot (or adoption) done, or without a
 * runtime; 0 while it still rewrites the guest, when it parks only late. */
int vm__kvm_host_booted(struct vm *vm);
/* The retained .pvsites table the runtime was given (guest address and size). */
int vm__kvm_host_table(struct vm *vm, uint64_t *addr, uint64_t *size);
/* A copy of vCPU (cpu)'s state block (struct rt_cpu_state); -1 without a runtime. */
struct rt_cpu_state;
int vm__kvm_host_cpu_state(struct vm *vm, unsigned cpu, struct rt_cpu_state *out);

/* personality_kvm_nic.c: what vm__platform_nic_* do when the kvm runtime
 * carries the frames (backend.h says what each means). */
struct vm_nic_stats;
struct net_backend;
int vm__kvm_nic_freeze(struct vm *vm);
void vm__kvm_nic_thaw(struct vm *vm);
int vm__kvm_nic_held(struct vm *vm, int (*fn)(void *ctx, const uint8_t *frame, size_t len),
		     void *ctx);
int vm__kvm_nic_hold_frame(struct vm *vm, const uint8_t *frame, size_t len);
int vm__kvm_nic_stats(struct vm *vm, struct vm_nic_stats *st);
struct net_backend *vm__kvm_nic_backend(struct vm *vm);

#endif
