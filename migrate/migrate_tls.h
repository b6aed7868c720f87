/* migrate_tls.h: the direct path's wire: a plaintext preamble naming the migration, then mutual TLS 1.3 between the two guest processes as a struct stream_io, opened by a one-time token */
#ifndef MIGRATE_TLS_H
#define MIGRATE_TLS_H

/*
 * The direct path (a later change wires it into pvmigrated and pvguest):
 * the daemons agree on a move over their own TLS link and a one-time
 * token; the source's pvguest gets a TCP socket connected to the target
 * daemon's peer port and writes the preamble; the target daemon reads it,
 * knows which migration the socket is for and hands it, raw, to its
 * receiving pvguest.  The two pvguests then do mutual TLS themselves
 * (the daemons' certificates and CA, pvmigrate.conf(5) tls_cert, tls_key,
 * tls_ca), the client sends the token, the server checks it and answers
 * (a migrate reply: OK, or ERROR and why), and the ordinary stream
 * (migrate_send / migrate_receive) runs over the connection's io.
 *
 *   preamble (plaintext, 24 bytes, the only thing read from an
 *   unauthenticated peer before TLS):
 *     "PVMD" | u16 version (1) | u16 0 | 16-byte migration id   (LE)
 *   TLS 1.3 handshake, both sides' certificates checked against the CA
 *   client -> server: 32-byte token
 *   server -> client: migrate reply OK | ERROR "reason"
 *   then the stream, and the reply channel, as on any migrate_conn
 */
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include "migrate.h"

/* ---- the preamble ---- */

#define MIGRATE_PREAMBLE_LEN 24u
#define MIGRATE_PREAMBLE_VERSION 1u
#define MIGRATE_ID_LEN 16u

/* The 24 bytes for id. */
void migrate_preamble_pack(uint8_t out[MIGRATE_PREAMBLE_LEN], const uint8_t id[MIGRATE_ID_LEN]);
/* Check 24 bytes that came from anyone: 0 with id filled, or -1 with why
 * (not ours: shows the first bytes; another version; reserved bits set). */
int migrate_preamble_parse(const uint8_t in[MIGRATE_PREAMBLE_LEN], uint8_t id[MIGRATE_ID_LEN],
			   char *why, size_t whylen);
/* Write the preamble on a connected socket, or read exactly its 24 bytes
 * (never one more: the TLS handshake follows on the same socket), each
 * giving up after timeout_ms without progress (<= 0: wait forever).
 * 0, or -1 with why. */
int migrate_preamble_write(int fd, const uint8_t id[MIGRATE_ID_LEN], int timeout_ms, char *why,
			   size_t whylen);
int migrate_preamble_read(int fd, uint8_t id[MIGRATE_ID_LEN], int timeout_ms, char *why,
			  size_t whylen);

/* ---- TLS ---- */

#define MIGRATE_TOKEN_LEN 32u

/* The suite both ends offer when cfg->suite is NULL (measured: migrate_tls.c). */
#define MIGRATE_TLS_SUITE "TLS_AES_128_GCM_SHA256"

struct migrate_tls_cfg {
	const char *cert, *key, *ca; /* PEM files, as pvmigrate.conf(5) tls_cert, tls_key, tls_ca */
	const char *suite;	     /* TLS 1.3 suite list (SSL_CTX_set_ciphersuites); NULL: the default */
	/* Ask OpenSSL for kernel TLS (SSL_OP_ENABLE_KTLS) on a plain socket
	 * BIO.  The connection then fails, saying why, unless the kernel took
	 * both directions: never a silent fallback to user-space TLS. */
	int ktls;
	/* Benchmarks only: one send() per TLS record (16 KiB) instead of
	 * gathering a whole stream write's records into few sends. */
	int no_coalesce;
};

/* One end's context (SSL_CTX) from cfg: server or client role. */
SSL_CTX *migrate_tls_ctx(const struct migrate_tls_cfg *cfg, int server, char *why, size_t whylen);

struct migrate_tls {
	struct stream_io io; /* the connection, both directions */
	int fd;		     /* the caller's: never closed here */
	int timeout_ms;	     /* per read or write without progress; <= 0: forever */
	SSL *ssl;
	int ktls;	     /* kernel TLS took both directions */
	int sock_bio;	     /* plain socket BIO (ktls), else ours */
	struct migrate_tls_bio *bio;
	/* figures */
	uint64_t writes, ssl_writes, sends; /* io->write calls, SSL_write calls, send()s */
	char err[256];	     /* the last failure of io->read or io->write */
};

/*
 * The TLS handshake on the connected socket fd (made non-blocking here;
 * still the caller's to close after migrate_tls_close), then the token:
 * the client sends it and waits for the server's answer; the server reads
 * it, compares it in constant time with `token` and answers OK or ERROR
 * "wrong migration token".  0 with t ready, or -1 with why (t cleaned up).
 */
int migrate_tls_connect(struct migrate_tls *t, SSL_CTX *ctx, int fd, int timeout_ms,
			const uint8_t token[MIGRATE_TOKEN_LEN], char *why, size_t whylen);
int migrate_tls_accept(struct migrate_tls *t, SSL_CTX *ctx, int fd, int timeout_ms,
		       const uint8_t token[MIGRATE_TOKEN_LEN], char *why, size_t whylen);
/* close_notify (best effort, not waited for), then free; fd stays open. */
void migrate_tls_close(struct migrate_tls *t);
/* The suite the handshake chose. */
const char *migrate_tls_suite(const struct migrate_tls *t);

/* Whether this kernel offers the "tls" TCP upper layer kTLS needs: 1, or
 * 0 with the evidence in why (the setsockopt's error and the kernel's
 * list in /proc/sys/net/ipv4/tcp_available_ulp). */
int migrate_tls_kernel_ulp(char *why, size_t whylen);

#endif
