/* migrate_shared.c: in-place moves that share the guest's RAM instead of copying it: the memory file passed with the stream, the target's copy-on-write view until the commit, the READY/GO handshake, and the source's site restore after a failed move */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "migrate.h"
#include "vm_sites.h"

/*
 * The window analysis (pvmigrate-stream(5), "Shared RAM", says the same
 * for readers of the protocol):
 *
 *  1. Header sent, nothing frozen: the target holds the file mapped
 *     MAP_PRIVATE.  Its writes (the re-patch of apply()) land in its own
 *     copies of the pages; the source's RAM never sees them.  Any failure,
 *     either side: the source runs on, untouched.
 *  2. Frozen, state sent, READY not yet seen: as 1.  The source may give
 *     up on a timeout and resume; the target, never having seen GO, can
 *     never run (its next read sees the connection end).
 *  3. GO sent: the source may no longer resume on a timeout.  The target
 *     maps the file MAP_SHARED and re-patches the real sites, then writes
 *     OK, and only then runs a vCPU.  If it dies or refuses in between,
 *     the source sees ERROR or the end of the connection without OK: no
 *     vCPU of the target ever ran, but sites may hold the target's bytes,
 *     half of them, or a torn one.  The source writes its own
 *     personality's bytes into every site from the retained table (the
 *     table itself is never written by anyone) and resumes.
 *  4. OK read: the target runs the guest.  The source's caller detaches
 *     its mapping right after migrate_send returns (vCPUs paused, NIC
 *     frozen until then), so that nothing of its teardown can touch the
 *     guest, and ends.
 *
 * Two copies never run: the target runs only after writing OK, the source
 * resumes only after the connection told it the target stopped without
 * writing it (ERROR, or the end of the stream with no OK in it: a process
 * that wrote OK has it in the socket even if it died right after).
 */

static uint64_t now_ns(void)
{
	return vm__now_ns();
}

void migrate_warm_up(void)
{
	static const unsigned char nothing[1];
	unsigned char digest[SHA256_DIGEST_LENGTH];

	SHA256(nothing, 0, digest);
}

void migrate_boost_start(struct migrate_boost *b)
{
	struct sched_param sp = { .sched_priority = 1 };

	if (b->on || pthread_getschedparam(pthread_self(), &b->policy, &sp) != 0)
		return;
	b->param = sp.sched_priority;
	sp.sched_priority = 1;
	b->on = pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp) == 0;
}

void migrate_boost_end(struct migrate_boost *b)
{
	struct sched_param sp = { .sched_priority = b->param };

	if (b->on)
		pthread_setschedparam(pthread_self(), b->policy, &sp);
	b->on = 0;
}

int migrate_shared_header(struct vm *vm, struct migrate_share *sh, struct stream_info *info,
			  char *why, size_t whylen)
{
	struct stat st;

	if (!sh || !sh->conn) {
		snprintf(why, whylen, "shared RAM: no connection to pass the memory over");
		return -1;
	}
	if (vm->mem_fd < 0 || fstat(vm->mem_fd, &st) < 0) {
		snprintf(why, whylen, "shared RAM: the guest's RAM has no memory file: %s",
			 vm->mem_fd < 0 ? "given up" : strerror(errno));
		return -1;
	}
	if ((uint64_t)st.st_size != vm->mem_size) {
		snprintf(why, whylen, "shared RAM: the memory file has %llu bytes, the guest %llu",
			 (unsigned long long)st.st_size, (unsigned long long)vm->mem_size);
		return -1;
	}
	info->shared.present = 1;
	info->shared.dev = (uint64_t)st.st_dev;
	info->shared.ino = (uint64_t)st.st_ino;
	info->shared.size = vm->mem_size;
	sh->conn->pass_fd = vm->mem_fd; /* with the header's first byte */
	return 0;
}

int migrate_shared_map(struct vm *vm, const struct stream_info *info, struct migrate_share *sh,
		       char *why, size_t whylen)
{
	struct stat st;
	int fd = sh && sh->conn ? sh->conn->got_fd : -1;

	if (fd < 0) {
		snprintf(why, whylen, "the header says the RAM is shared, but no memory file came "
			 "with it (only processes of one host can share it)");
		return -1;
	}
	sh->conn->got_fd = -1; /* ours now: closed below or kept by the VM */
	if (fstat(fd, &st) < 0 || (uint64_t)st.st_dev != info->shared.dev ||
	    (uint64_t)st.st_ino != info->shared.ino || (uint64_t)st.st_size != info->shared.size ||
	    info->shared.size != vm->mem_size) {
		snprintf(why, whylen, "the memory file that came with the stream (inode %llu, %llu "
			 "bytes) is not the one the header names (inode %llu, %llu bytes) or not "
			 "this VM's size (%llu)", (unsigned long long)st.st_ino,
			 (unsigned long long)st.st_size, (unsigned long long)info->shared.ino,
			 (unsigned long long)info->shared.size, (unsigned long long)vm->mem_size);
		close(fd);
		return -1;
	}
	/* Copy-on-write until GO: nothing this process writes reaches the file. */
	if (vm__ram_share(vm, fd, 1) < 0) {
		snprintf(why, whylen, "%s", vm->err);
		close(fd);
		return -1;
	}
	migrate_boost_start(&sh->boost); /* ended by the commit, whatever happens */
	return 0;
}

/* The target's last word after GO: OK, ERROR, or nothing (migrate_commit_send). */
int migrate_shared_commit(struct vm *src, const struct stream_io *io, struct migrate_share *sh,
			  enum migrate_reply_code *code, char *msg, size_t msglen, char *why,
			  size_t whylen)
{
	/* a direct socket: after GO, no timeout; its end proves the target
	 * never wrote OK, so never ran the guest */
	struct migrate_commit cm = { .conn = sh->conn };
	int rc;

	sh->t_sent = now_ns();
	/* Frozen, the state on its way: from here three wake-ups (READY, GO,
	 * OK) are all the downtime left.  Not during the pause: that waits
	 * for the vCPU threads, which then need the CPU more than we do. */
	migrate_boost_start(&sh->boost);
	rc = migrate_commit_send(io, &cm, code, msg, msglen, why, whylen);
	/* From the first byte of GO on, the target may write our RAM. */
	sh->committed = cm.committed;
	sh->in_doubt = cm.in_doubt;
	sh->ready_ns = cm.ready_ns;
	sh->go_ns = cm.go_ns;
	/* After OK the target runs the guest.  Our vCPUs stay paused and the
	 * NIC frozen, so nothing here touches the RAM before the caller,
	 * right after migrate_send, detaches it (vm__ram_detach): not in the
	 * downtime, since unmapping RAM the guest used zaps every page of it
	 * from our page tables and KVM's (~5 ms for 200 MiB).  The boost
	 * stays until the caller ends it: dropped here, this thread could
	 * wait for the CPU before migrate_send even takes the time, and that
	 * wait would count as downtime. */
	return rc;
}

static int hook(struct migrate_share *sh, const char *step, char *why, size_t whylen)
{
	if (!sh->test_hook || !sh->test_hook(sh->test_ctx, step))
		return 0;
	snprintf(why, whylen, "test fault at %s", step);
	return -1;
}

int migrate_shared_commit_recv(struct vm *dst, const struct stream_io *io,
			       struct migrate_share *sh, const struct stream_patch *patch,
			       struct vm_vcpu_state *vcpus, char *why, size_t whylen)
{
	char reason[300];
	int shared = 0, rc;

	sh->t_applied = now_ns();
	rc = migrate_commit_await(io, sh->test_hook, sh->test_ctx, &sh->t_ready, reason,
				  sizeof reason);
	if (rc > 0)
		goto refuse;
	if (rc < 0) {
		snprintf(why, whylen, "%s", reason);
		migrate_boost_end(&sh->boost);
		return -1; /* the source is gone or gave up: nobody to tell */
	}
	/* Committed: from here on the RAM is the guest's, shared. */
	sh->t_go = now_ns();
	shared = 1;
	if (vm__ram_share(dst, dst->mem_fd, 0) < 0) {
		snprintf(reason, sizeof reason, "%s", dst->err);
		goto refuse;
	}
	sh->t_mapped = now_ns();
	/* The copy-on-write pages are gone with the private mapping: the
	 * sites again, now in the real RAM.  The source is frozen and checked
	 * nothing there changed: the same rewrite, the same result. */
	if (migrate_repatch(dst, patch, vcpus, reason, sizeof reason) < 0 ||
	    hook(sh, "repatched", reason, sizeof reason) < 0)
		goto refuse;
	sh->t_repatched = now_ns();
	if (migrate_reply_send(io, MIGRATE_REPLY_OK, NULL) < 0) {
		/* Without our OK the source resumes its copy: ours must not
		 * run, nor touch the RAM it resumes on. */
		snprintf(reason, sizeof reason, "confirmation not delivered, the source keeps the "
			 "guest");
		goto refuse;
	}
	migrate_boost_end(&sh->boost); /* the guest's threads start after the OK */
	return 0;

refuse:
	migrate_boost_end(&sh->boost);
	/* Detach first: once the source reads our ERROR it may resume, and
	 * nothing of ours may touch its RAM by then. */
	if (shared)
		vm__ram_detach(dst);
	snprintf(why, whylen, "%s", reason);
	migrate_reply_send(io, MIGRATE_REPLY_ERROR, why); /* best effort */
	return -1;
}

int migrate_shared_restore(struct vm *vm, struct migrate_share *sh, char *why, size_t whylen)
{
	const struct personality *p = personality_find(migrate_personality(vm));
	uint8_t want[PVSITES_LEN_MAX];
	struct pvsite *sites = NULL;
	unsigned restored = 0;
	size_t n, i;
	uint8_t *at;
	int rc;

	if (sh)
		migrate_boost_end(&sh->boost); /* before the resume starts threads again */
	if (!vm->sites_size)
		return 0; /* no sites: nothing the target could have rewritten */
	if (!p) {
		snprintf(why, whylen, "restore sites: personality '%s' is not built in",
			 migrate_personality(vm));
		return -1;
	}
	/* The table is never rewritten, only the sites it lists. */
	if (vm__sites_load(vm, vm->sites_addr, vm->sites_size, &sites, &n) < 0) {
		snprintf(why, whylen, "restore sites: %s", vm->err);
		return -1;
	}
	for (i = 0; i < n; i++) {
		at = vm__gpa(vm, sites[i].addr, sites[i].len);
		rc = at ? personality_emit(p, &sites[i], want) : REPATCH_EMAP;
		if (rc) {
			snprintf(why, whylen, "restore sites: site %zu at %#llx: cannot write %s's "
				 "bytes (code %d)", i, (unsigned long long)sites[i].addr, p->name, rc);
			free(sites);
			return -1;
		}
		/* whatever is there (ours, the target's, a torn mix): ours */
		if (memcmp(at, want, sites[i].len)) {
			memcpy(at, want, sites[i].len);
			restored++;
		}
	}
	free(sites);
	if (sh)
		sh->sites_restored = restored;
	return 0;
}
