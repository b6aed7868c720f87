/* test_tls_move.h: a move over loopback TCP and the direct path's wire (preamble, mutual TLS, token) in one process: throwaway certificates, the listener, the target's thread, the source's dial; for test_migrate_tls and bench_migrate_tls */
#ifndef TEST_TLS_MOVE_H
#define TEST_TLS_MOVE_H

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "migrate.h"
#include "migrate_tls.h"

/*
 * Header-only, as test_vm.h.  The target side is what the receiving
 * pvguest and its daemon will do: accept, read the preamble (and check
 * the migration id), TLS as the server with the expected token, then
 * migrate_receive() and run the guest.  With no VM (vm NULL) it stops
 * after the token: the refusal tests need no target VM.
 */
struct tls_move_target {
	/* set by the caller */
	int lfd;
	SSL_CTX *ctx; /* NULL: plain TCP, no preamble, no TLS (the baseline) */
	uint8_t id[MIGRATE_ID_LEN], token[MIGRATE_TOKEN_LEN];
	struct vm *vm;
	int timeout_ms;
	/* what happened */
	pthread_t thread;
	int stage; /* 1 connected, 2 preamble taken, 3 TLS and token taken, 4 received */
	int rc, ran;
	char why[512];
};

/* Run `sh SCRIPT DIR CA NAME...`: 0, or -1 with why. */
static inline int tls_move_certs(const char *script, const char *dir, const char *names,
				 char *why, size_t whylen)
{
	char cmd[1024];
	int st;

	snprintf(cmd, sizeof cmd, "mkdir -p '%s' && sh '%s' '%s' %s >/dev/null", dir, script, dir,
		 names);
	st = system(cmd);
	if (st != 0) {
		snprintf(why, whylen, "%.400s: status %d", cmd, st);
		return -1;
	}
	return 0;
}

/* A listening TCP socket on 127.0.0.1, any port (*port): fd, or -1. */
static inline int tls_move_listen(uint16_t *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof sa;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 4) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	*port = ntohs(sa.sin_port);
	return fd;
}

/* A TCP connection to 127.0.0.1:port, TCP_NODELAY: fd, or -1. */
static inline int tls_move_dial(uint16_t port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				  .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return fd;
}

static inline void *tls_move_target_run(void *arg)
{
	struct tls_move_target *t = arg;
	struct pollfd pfd = { .fd = t->lfd, .events = POLLIN };
	struct migrate_tls tls;
	struct migrate_conn conn;
	uint8_t id[MIGRATE_ID_LEN];
	const struct stream_io *io;
	int fd;

	t->rc = -1;
	if (poll(&pfd, 1, t->timeout_ms) != 1 || (fd = accept(t->lfd, NULL, NULL)) < 0) {
		snprintf(t->why, sizeof t->why, "no connection came");
		return NULL;
	}
	t->stage = 1;
	if (!t->ctx) {
		migrate_conn_init(&conn, fd, t->timeout_ms);
		io = &conn.io;
	} else {
		if (migrate_preamble_read(fd, id, t->timeout_ms, t->why, sizeof t->why) < 0)
			goto out;
		if (memcmp(id, t->id, sizeof id)) {
			snprintf(t->why, sizeof t->why, "no migration with that id here");
			goto out;
		}
		t->stage = 2;
		if (migrate_tls_accept(&tls, t->ctx, fd, t->timeout_ms, t->token, t->why,
				       sizeof t->why) < 0)
			goto out;
		t->stage = 3;
		io = &tls.io;
	}
	if (!t->vm) {
		t->rc = 0;
	} else {
		t->rc = migrate_receive(t->vm, io, t->why, sizeof t->why);
		if (t->rc == 0)
			t->stage = 4;
	}
	if (t->ctx)
		migrate_tls_close(&tls);
out:
	close(fd);
	if (t->rc == 0 && t->vm) {
		vm__run(t->vm);
		t->ran = 1;
	}
	return NULL;
}

static inline void tls_move_target_start(struct tls_move_target *t)
{
	pthread_create(&t->thread, NULL, tls_move_target_run, t);
}

#endif
