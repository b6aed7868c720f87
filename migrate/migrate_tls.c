/* migrate_tls.c: the direct path's wire: the plaintext preamble, and a blocking mutual-TLS 1.3 connection with timeouts over a connected socket as a struct stream_io, opened by a one-time token */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "migrate_tls.h"

#ifndef TCP_ULP
#define TCP_ULP 31
#endif

/* ---- waiting on the socket ---- */

/* Until fd can move bytes the wanted way: 0, or -1 (ETIMEDOUT after
 * timeout_ms without it: a deadline per call, as migrate_conn's). */
static int fd_wait(int fd, short events, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	int n;

	do
		n = poll(&pfd, 1, timeout_ms > 0 ? timeout_ms : -1);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	if (n == 0) {
		errno = ETIMEDOUT;
		return -1;
	}
	return 0;
}

/* ---- the preamble ---- */

#define PREAMBLE_MAGIC "PVMD"

void migrate_preamble_pack(uint8_t out[MIGRATE_PREAMBLE_LEN], const uint8_t id[MIGRATE_ID_LEN])
{
	memcpy(out, PREAMBLE_MAGIC, 4);
	out[4] = (uint8_t)MIGRATE_PREAMBLE_VERSION;
	out[5] = (uint8_t)(MIGRATE_PREAMBLE_VERSION >> 8);
	out[6] = out[7] = 0;
	memcpy(out + 8, id, MIGRATE_ID_LEN);
}

/* Anything may arrive here (a port scanner, a TLS client that skipped the
 * preamble, another protocol): fixed length, every field checked, and the
 * bytes shown in hex, never as text. */
int migrate_preamble_parse(const uint8_t in[MIGRATE_PREAMBLE_LEN], uint8_t id[MIGRATE_ID_LEN],
			   char *why, size_t whylen)
{
	unsigned version = in[4] | (unsigned)in[5] << 8, reserved = in[6] | (unsigned)in[7] << 8;

	if (memcmp(in, PREAMBLE_MAGIC, 4)) {
		snprintf(why, whylen, "not a pvmigrate direct connection: it began %02x %02x %02x %02x "
			 "%02x %02x %02x %02x, not the preamble's \"PVMD\"", in[0], in[1], in[2], in[3],
			 in[4], in[5], in[6], in[7]);
		return -1;
	}
	if (version != MIGRATE_PREAMBLE_VERSION) {
		snprintf(why, whylen, "direct connection preamble version %u: this build speaks %u",
			 version, MIGRATE_PREAMBLE_VERSION);
		return -1;
	}
	if (reserved) {
		snprintf(why, whylen, "direct connection preamble: reserved field %#x is not 0",
			 reserved);
		return -1;
	}
	memcpy(id, in + 8, MIGRATE_ID_LEN);
	return 0;
}

int migrate_preamble_write(int fd, const uint8_t id[MIGRATE_ID_LEN], int timeout_ms, char *why,
			   size_t whylen)
{
	uint8_t buf[MIGRATE_PREAMBLE_LEN];
	size_t done = 0;
	ssize_t n;

	migrate_preamble_pack(buf, id);
	while (done < sizeof buf) {
		n = send(fd, buf + done, sizeof buf - done, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) &&
		    fd_wait(fd, POLLOUT, timeout_ms) == 0)
			continue;
		snprintf(why, whylen, "writing the direct connection preamble: %s",
			 n == 0 ? "connection closed" : strerror(errno));
		return -1;
	}
	return 0;
}

int migrate_preamble_read(int fd, uint8_t id[MIGRATE_ID_LEN], int timeout_ms, char *why,
			  size_t whylen)
{
	uint8_t buf[MIGRATE_PREAMBLE_LEN];
	size_t have = 0;
	ssize_t n;

	while (have < sizeof buf) {
		/* exactly what is missing: the TLS handshake's bytes that
		 * follow are not ours to take */
		n = recv(fd, buf + have, sizeof buf - have, MSG_DONTWAIT);
		if (n > 0) {
			have += (size_t)n;
			continue;
		}
		if (n == 0) {
			snprintf(why, whylen, "direct connection closed after %zu of the preamble's %u "
				 "bytes", have, MIGRATE_PREAMBLE_LEN);
			return -1;
		}
		if (errno == EINTR)
			continue;
		if ((errno == EAGAIN || errno == EWOULDBLOCK) && fd_wait(fd, POLLIN, timeout_ms) == 0)
			continue;
		snprintf(why, whylen, "reading the direct connection preamble (%zu of %u bytes): %s",
			 have, MIGRATE_PREAMBLE_LEN, strerror(errno));
		return -1;
	}
	return migrate_preamble_parse(buf, id, why, whylen);
}

/* ---- our BIO: send() with MSG_NOSIGNAL, records gathered ---- */

/*
 * OpenSSL's socket BIO writes with write(): a peer that hung up raises
 * SIGPIPE, which would kill the process holding the source guest.  Ours
 * sends with MSG_NOSIGNAL (EPIPE instead), and gathers the records of
 * one stream write: OpenSSL hands the BIO one 16 KiB record at a time,
 * and a 1 MiB write would be 64 send()s; through this buffer it is 4.
 * Everything gathered is sent before a stream write returns (tls_write),
 * and OpenSSL flushes its handshake messages and alerts itself.
 *
 * Writes wait for room here, up to the timeout, instead of handing
 * OpenSSL a retry (each retry would be one more SSL_write call): so a
 * stream write is exactly one SSL_write call.  A
 * write that times out is the end of the connection, as on a
 * migrate_conn.  Reads stay non-blocking (SSL_ERROR_WANT_READ, then
 * poll): a read that timed out leaves the session usable.
 */
#define GATHER (256u << 10)

struct migrate_tls_bio {
	int fd;
	int timeout_ms;
	uint8_t *buf; /* NULL: no gathering */
	size_t len;
	uint64_t *sends;
};

/* One send: n >= 0, or -1 with errno (EAGAIN: no room now). */
static ssize_t bio_send(struct migrate_tls_bio *tb, const void *p, size_t len)
{
	ssize_t n;

	do
		n = send(tb->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n >= 0)
		(*tb->sends)++;
	return n;
}

/* Send all of p, waiting for room: 0, or -1 with errno (ETIMEDOUT). */
static int bio_send_all(struct migrate_tls_bio *tb, const uint8_t *p, size_t len)
{
	ssize_t n;

	while (len) {
		n = bio_send(tb, p, len);
		if (n < 0) {
			if ((errno != EAGAIN && errno != EWOULDBLOCK) ||
			    fd_wait(tb->fd, POLLOUT, tb->timeout_ms) < 0)
				return -1;
			continue;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Send what is gathered: 0, or -1 with errno. */
static int bio_drain(struct migrate_tls_bio *tb)
{
	int rc = 0;

	if (tb->buf && tb->len)
		rc = bio_send_all(tb, tb->buf, tb->len);
	tb->len = 0; /* sent, or the connection is over */
	return rc;
}

static int bio_write(BIO *b, const char *in, int inl)
{
	struct migrate_tls_bio *tb = BIO_get_data(b);

	BIO_clear_retry_flags(b);
	if (inl <= 0)
		return 0;
	if (tb->buf && tb->len + (size_t)inl > GATHER && bio_drain(tb) < 0)
		return -1;
	if (tb->buf && (size_t)inl <= GATHER) {
		memcpy(tb->buf + tb->len, in, (size_t)inl);
		tb->len += (size_t)inl;
		return inl;
	}
	return bio_send_all(tb, (const uint8_t *)in, (size_t)inl) < 0 ? -1 : inl;
}

static int bio_read(BIO *b, char *out, int outl)
{
	struct migrate_tls_bio *tb = BIO_get_data(b);
	ssize_t n;

	BIO_clear_retry_flags(b);
	do
		n = recv(tb->fd, out, (size_t)outl, MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		BIO_set_retry_read(b);
	return (int)n;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct migrate_tls_bio *tb = BIO_get_data(b);

	if (cmd != BIO_CTRL_FLUSH)
		return 0; /* nothing else to ask of a plain socket */
	BIO_clear_retry_flags(b);
	return bio_drain(tb) == 0 ? 1 : -1;
}

static BIO_METHOD *bio_method;
static pthread_once_t bio_once = PTHREAD_ONCE_INIT;

static void bio_method_make(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "pvmigrate tls socket");

	if (m && BIO_meth_set_write(m, bio_write) == 1 && BIO_meth_set_read(m, bio_read) == 1 &&
	    BIO_meth_set_ctrl(m, bio_ctrl) == 1)
		bio_method = m;
	else
		BIO_meth_free(m);
}

/* ---- SIGPIPE around a plain socket BIO (kTLS) ---- */

/*
 * With kTLS OpenSSL must own the socket BIO, which writes with write():
 * SIGPIPE is held blocked in this thread for the call and, if the call
 * raised one that was not already pending, taken off again (as libpq
 * does), so a closed peer is EPIPE and nothing else.
 */
struct pipe_guard {
	sigset_t old;
	int pending, on;
};

static void guard_on(struct migrate_tls *t, struct pipe_guard *g)
{
	sigset_t set, pend;

	g->on = t->sock_bio;
	if (!g->on)
		return;
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, &g->old);
	sigpending(&pend);
	g->pending = sigismember(&pend, SIGPIPE);
}

static void guard_off(struct pipe_guard *g)
{
	sigset_t set;
	struct timespec zero = { 0, 0 };
	int e = errno;

	if (!g->on)
		return;
	if (!g->pending) {
		sigemptyset(&set);
		sigaddset(&set, SIGPIPE);
		while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR)
			;
	}
	pthread_sigmask(SIG_SETMASK, &g->old, NULL);
	errno = e;
}

/* ---- errors and waits ---- */

/* OpenSSL's last word for why, or "" */
static void ssl_reason(char *out, size_t len)
{
	unsigned long e, last = 0;

	while ((e = ERR_get_error()))
		last = e;
	if (last)
		ERR_error_string_n(last, out, len);
	else if (len)
		out[0] = 0;
}

/*
 * After an SSL call returned ret: wait for the socket when OpenSSL wants
 * it (0: call again), else -1 with errno and t->err: EOF is ECONNRESET
 * (eof set), a TLS failure EPROTO with OpenSSL's reason.
 */
static int tls_after(struct migrate_tls *t, int ret, int *eof)
{
	int e = SSL_get_error(t->ssl, ret), se = errno;

	switch (e) {
	case SSL_ERROR_WANT_READ:
		return fd_wait(t->fd, POLLIN, t->timeout_ms);
	case SSL_ERROR_WANT_WRITE:
		return fd_wait(t->fd, POLLOUT, t->timeout_ms);
	case SSL_ERROR_ZERO_RETURN:
		if (eof)
			*eof = 1;
		snprintf(t->err, sizeof t->err, "the peer closed the TLS session");
		errno = ECONNRESET;
		return -1;
	case SSL_ERROR_SYSCALL:
		ssl_reason(t->err, sizeof t->err);
		if (!se || se == EAGAIN) { /* EOF where a record was due */
			if (eof)
				*eof = 1;
			se = ECONNRESET;
		}
		if (!t->err[0])
			snprintf(t->err, sizeof t->err, "%s", se == ECONNRESET ?
				 "connection closed" : strerror(se));
		errno = se;
		return -1;
	default:
		ssl_reason(t->err, sizeof t->err);
		if (!t->err[0])
			snprintf(t->err, sizeof t->err, "TLS error %d", e);
		errno = EPROTO;
		return -1;
	}
}

/* ---- the io ---- */

static ssize_t tls_read(void *ctx, void *buf, size_t len)
{
	struct migrate_tls *t = ctx;
	struct pipe_guard g;
	size_t n = 0;
	int ok, eof = 0;

	for (;;) {
		ERR_clear_error();
		errno = 0; /* an end reads as SSL_ERROR_SYSCALL with errno 0 */
		guard_on(t, &g);
		ok = SSL_read_ex(t->ssl, buf, len, &n);
		guard_off(&g);
		if (ok)
			return (ssize_t)n;
		if (tls_after(t, 0, &eof) < 0)
			return eof ? 0 : -1; /* an end is a 0 read, as on a socket */
	}
}

/* Send what our BIO gathered, waiting for room. */
static int tls_drain(struct migrate_tls *t)
{
	if (t->bio && bio_drain(t->bio) < 0) {
		snprintf(t->err, sizeof t->err, "%s", strerror(errno));
		if (errno == ECONNRESET)
			errno = EPIPE;
		return -1;
	}
	return 0;
}

/* The whole buffer in one SSL_write (our BIO waits for room: called
 * again only on a socket BIO, when the socket is full), then what was
 * gathered goes out. */
static ssize_t tls_write(void *ctx, const void *buf, size_t len)
{
	struct migrate_tls *t = ctx;
	struct pipe_guard g;
	size_t n = 0;
	int ok;

	t->writes++;
	for (;;) {
		ERR_clear_error();
		errno = 0; /* an end reads as SSL_ERROR_SYSCALL with errno 0 */
		guard_on(t, &g);
		ok = SSL_write_ex(t->ssl, buf, len, &n);
		guard_off(&g);
		t->ssl_writes++;
		if (ok)
			break;
		if (tls_after(t, 0, NULL) < 0) {
			if (errno == ECONNRESET)
				errno = EPIPE;
			return -1;
		}
	}
	if (tls_drain(t) < 0)
		return -1;
	return (ssize_t)n;
}

/* ---- contexts ---- */

/*
 * The default suite, measured with bench_migrate_tls on this machine
 * (AMD EPYC with AES-NI and VAES, OpenSSL 3.0, 2 CPUs shared with other
 * work): sealing 16 KiB records alone, AES-128-GCM did 1 850-3 100 MiB/s
 * of CPU against 1 660-3 100 for AES-256-GCM, ahead in 6 of 8 runs by
 * 10-35 % and level or behind in the others (`openssl speed -evp`:
 * 3.5 against 3.15 GB/s); 10 AES rounds a block instead of 14, the same
 * GHASH.  Through this layer and in whole moves the two are within the
 * machine's noise (layer 833-852 MiB/s for both in the quietest run):
 * the sockets and the copies cost more than the cipher.  So AES-128, the
 * cheaper per byte where CPU is short (a 2-CPU host also runs the
 * guest's vCPUs).  Both ends offer only this suite, so the choice is not
 * left to the library's preference order (which puts AES-256 first).
 */
SSL_CTX *migrate_tls_ctx(const struct migrate_tls_cfg *cfg, int server, char *why, size_t whylen)
{
	SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	char r[256];

	if (!ctx) {
		ssl_reason(r, sizeof r);
		snprintf(why, whylen, "TLS context: %s", r);
		return NULL;
	}
	/* TLS 1.3 only: one round trip, no renegotiation, forward secrecy */
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1) {
		ssl_reason(r, sizeof r);
		snprintf(why, whylen, "TLS 1.3: %s", r);
		goto out;
	}
	if (SSL_CTX_set_ciphersuites(ctx, cfg->suite ? cfg->suite : MIGRATE_TLS_SUITE) != 1) {
		ssl_reason(r, sizeof r);
		snprintf(why, whylen, "TLS 1.3 suite %s: %s", cfg->suite ? cfg->suite :
			 MIGRATE_TLS_SUITE, r);
		goto out;
	}
	if (SSL_CTX_use_certificate_chain_file(ctx, cfg->cert) != 1) {
		ssl_reason(r, sizeof r);
		snprintf(why, whylen, "tls_cert %s: %s", cfg->cert, r);
		goto out;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, cfg->key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		ssl_reason(r, sizeof r);
		snprintf(why, whylen, "tls_key %s: %s", cfg->key, r);
		goto out;
	}
	if (SSL_CTX_load_verify_locations(ctx, cfg->ca, NULL) != 1) {
		ssl_reason(r, sizeof r);
		snprintf(why, whylen, "tls_ca %s: %s", cfg->ca, r);
		goto out;
	}
	/* as the daemons' link: the stream has its own END and reply, so a
	 * peer gone without close_notify is an end like any other */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_TICKET |
			    (cfg->ktls ? SSL_OP_ENABLE_KTLS : 0));
	/* one connection per move: no session to resume */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (server)
		SSL_CTX_set_num_tickets(ctx, 0);
	/* both ends must show a certificate signed by tls_ca */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	/* read several records per recv(): the stream comes in 1 MiB writes */
	SSL_CTX_set_read_ahead(ctx, 1);
	SSL_CTX_set_default_read_buffer_len(ctx, 256u << 10);
	SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_AUTO_RETRY);
	/* the context carries the benchmark's choice to its connections */
	if (cfg->no_coalesce)
		SSL_CTX_set_app_data(ctx, (void *)1);
	return ctx;
out:
	SSL_CTX_free(ctx);
	return NULL;
}

/* ---- kTLS ---- */

int migrate_tls_kernel_ulp(char *why, size_t whylen)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0), rc, e;
	char list[128] = "";
	FILE *f = fopen("/proc/sys/net/ipv4/tcp_available_ulp", "r");

	if (f) {
		if (!fgets(list, sizeof list, f))
			list[0] = 0;
		list[strcspn(list, "\n")] = 0;
		fclose(f);
	}
	if (fd < 0) {
		snprintf(why, whylen, "socket: %s", strerror(errno));
		return 0;
	}
	/* an unconnected socket: the kernel looks the ULP up (ENOENT when it
	 * has none called "tls", even after trying to load the module) before
	 * it would complain that the socket is not connected */
	rc = setsockopt(fd, IPPROTO_TCP, TCP_ULP, "tls", sizeof "tls");
	e = errno;
	close(fd);
	if (rc < 0 && e == ENOENT) {
		snprintf(why, whylen, "the kernel has no \"tls\" TCP ULP (setsockopt TCP_ULP \"tls\": "
			 "%s; tcp_available_ulp: \"%s\")", strerror(e), list);
		return 0;
	}
	snprintf(why, whylen, "TCP_ULP \"tls\": %s; tcp_available_ulp: \"%s\"",
		 rc < 0 ? strerror(e) : "taken", list);
	return 1;
}

/* ---- connections ---- */

static int tls_open(struct migrate_tls *t, SSL_CTX *ctx, int fd, int timeout_ms, int server,
		    char *why, size_t whylen)
{
	int fl = fcntl(fd, F_GETFL), ok;
	struct pipe_guard g;
	long vr;
	BIO *b = NULL;

	memset(t, 0, sizeof *t);
	t->fd = fd;
	t->timeout_ms = timeout_ms;
	t->io = (struct stream_io){ t, tls_read, tls_write };
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
		snprintf(why, whylen, "socket: %s", strerror(errno));
		return -1;
	}
	if (!(t->ssl = SSL_new(ctx)))
		goto ssl_fail;
	t->sock_bio = !!(SSL_CTX_get_options(ctx) & SSL_OP_ENABLE_KTLS);
	if (t->sock_bio) {
		if (SSL_set_fd(t->ssl, fd) != 1)
			goto ssl_fail;
	} else {
		pthread_once(&bio_once, bio_method_make);
		t->bio = calloc(1, sizeof *t->bio);
		if (!bio_method || !t->bio || !(b = BIO_new(bio_method)))
			goto ssl_fail;
		t->bio->fd = fd;
		t->bio->timeout_ms = timeout_ms;
		t->bio->sends = &t->sends;
		if (!SSL_CTX_get_app_data(ctx) && !(t->bio->buf = malloc(GATHER))) {
			BIO_free(b);
			goto ssl_fail;
		}
		BIO_set_data(b, t->bio);
		BIO_set_init(b, 1);
		SSL_set_bio(t->ssl, b, b);
	}
	for (;;) {
		ERR_clear_error();
		errno = 0; /* an end reads as SSL_ERROR_SYSCALL with errno 0 */
		guard_on(t, &g);
		ok = server ? SSL_accept(t->ssl) : SSL_connect(t->ssl);
		guard_off(&g);
		if (ok == 1)
			break;
		if (tls_after(t, ok, NULL) < 0) {
			vr = SSL_get_verify_result(t->ssl);
			snprintf(why, whylen, "TLS handshake with the %s: %s%s%s", server ? "source" :
				 "target", t->err[0] ? t->err : strerror(errno),
				 vr != X509_V_OK ? ": its certificate: " : "",
				 vr != X509_V_OK ? X509_verify_cert_error_string(vr) : "");
			return -1;
		}
	}
	if (tls_drain(t) < 0) {
		snprintf(why, whylen, "TLS handshake with the %s: %s", server ? "source" : "target",
			 t->err);
		return -1;
	}
	if (t->sock_bio) {
		t->ktls = BIO_get_ktls_send(SSL_get_wbio(t->ssl)) &&
			  BIO_get_ktls_recv(SSL_get_rbio(t->ssl));
		if (!t->ktls) {
			char ev[300];

			migrate_tls_kernel_ulp(ev, sizeof ev);
			snprintf(why, whylen, "kernel TLS asked for but not engaged (send %d, receive "
				 "%d): %s", (int)BIO_get_ktls_send(SSL_get_wbio(t->ssl)),
				 (int)BIO_get_ktls_recv(SSL_get_rbio(t->ssl)), ev);
			return -1;
		}
	}
	return 0;
ssl_fail:
	ssl_reason(t->err, sizeof t->err);
	snprintf(why, whylen, "TLS session: %s", t->err[0] ? t->err : "out of memory");
	return -1;
}

static void tls_free(struct migrate_tls *t)
{
	SSL_free(t->ssl); /* and our BIO with it */
	if (t->bio)
		free(t->bio->buf);
	free(t->bio);
	t->ssl = NULL;
	t->bio = NULL;
}

int migrate_tls_connect(struct migrate_tls *t, SSL_CTX *ctx, int fd, int timeout_ms,
			const uint8_t token[MIGRATE_TOKEN_LEN], char *why, size_t whylen)
{
	enum migrate_reply_code code;
	char msg[MIGRATE_REPLY_MAX + 1], r[300];

	if (tls_open(t, ctx, fd, timeout_ms, 0, why, whylen) < 0)
		goto fail;
	if (migrate_io_full(&t->io, (void *)token, MIGRATE_TOKEN_LEN, 1) < 0) {
		snprintf(why, whylen, "sending the migration token: %s", t->err);
		goto fail;
	}
	/* In TLS 1.3 the client's handshake ends before the server has
	 * checked its certificate: only the answer says the target took both
	 * the certificate and the token. */
	t->err[0] = 0;
	if (migrate_reply_recv(&t->io, &code, msg, sizeof msg, r, sizeof r) < 0) {
		snprintf(why, whylen, "the target did not accept the connection: %s",
			 t->err[0] ? t->err : r);
		goto fail;
	}
	if (code != MIGRATE_REPLY_OK) {
		snprintf(why, whylen, "the target refused the connection: %s",
			 code == MIGRATE_REPLY_ERROR ? msg : "an answer that is not OK");
		goto fail;
	}
	return 0;
fail:
	tls_free(t);
	return -1;
}

int migrate_tls_accept(struct migrate_tls *t, SSL_CTX *ctx, int fd, int timeout_ms,
		       const uint8_t token[MIGRATE_TOKEN_LEN], char *why, size_t whylen)
{
	uint8_t got[MIGRATE_TOKEN_LEN] = { 0 };

	if (tls_open(t, ctx, fd, timeout_ms, 1, why, whylen) < 0) {
		tls_free(t); /* no close_notify after a failed handshake */
		return -1;
	}
	if (migrate_io_full(&t->io, got, sizeof got, 0) < 0) {
		snprintf(why, whylen, "reading the migration token: %s", t->err[0] ? t->err :
			 strerror(errno));
		goto fail;
	}
	/* constant time: how much of a guess matched must not show */
	if (CRYPTO_memcmp(got, token, sizeof got)) {
		migrate_reply_send(&t->io, MIGRATE_REPLY_ERROR, "wrong migration token");
		snprintf(why, whylen, "refused the source: wrong migration token");
		goto fail;
	}
	if (migrate_reply_send(&t->io, MIGRATE_REPLY_OK, NULL) < 0) {
		snprintf(why, whylen, "accepting the source: %s", t->err);
		goto fail;
	}
	return 0;
fail:
	OPENSSL_cleanse(got, sizeof got);
	migrate_tls_close(t);
	return -1;
}

void migrate_tls_close(struct migrate_tls *t)
{
	struct pipe_guard g;

	if (!t->ssl)
		return;
	/* one try: the peer is not waited for, nor is room in a full socket
	 * for long: close_notify is a courtesy */
	if (t->bio)
		t->bio->timeout_ms = 100;
	guard_on(t, &g);
	SSL_shutdown(t->ssl);
	guard_off(&g);
	if (t->bio)
		bio_drain(t->bio);
	tls_free(t);
}

const char *migrate_tls_suite(const struct migrate_tls *t)
{
	return t->ssl ? SSL_get_cipher_name(t->ssl) : "none";
}
