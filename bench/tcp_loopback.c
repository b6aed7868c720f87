/* tcp_loopback.c: the loopback TCP ceiling for migration benchmarks: one connection, N MiB, MiB/s; with --tls, the same through mutual TLS */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/*
 * usage: tcp_loopback [MIB] [--tls DIR]
 *
 * The same shape of transfer a migration stream makes: one TCP connection
 * on 127.0.0.1, large writes from one thread, reads into a buffer on
 * another.  Plain TCP: the ceiling, not what the daemons achieve.  With
 * --tls DIR (certificates as scripts/tls-certs.sh DIR ca a b makes them),
 * both ends do what two pvmigrated do on their peer link: mutual TLS
 * with the library's default suite, 1 MiB SSL_write/SSL_read calls, in
 * two threads of one process.  That is the ceiling of TLS itself on this
 * machine, without the daemons' relays.
 */
#define CHUNK (1u << 20)

static int lfd;
static const char *tls_dir;

static SSL_CTX *tls_ctx(int server)
{
	SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	char crt[4096], key[4096], ca[4096];
	const char *me = server ? "a" : "b";

	snprintf(crt, sizeof crt, "%s/%s.crt", tls_dir, me);
	snprintf(key, sizeof key, "%s/%s.key", tls_dir, me);
	snprintf(ca, sizeof ca, "%s/ca.crt", tls_dir);
	if (!ctx || SSL_CTX_use_certificate_chain_file(ctx, crt) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
		fprintf(stderr, "tcp_loopback: TLS setup from %s: ", tls_dir);
		ERR_print_errors_fp(stderr);
		exit(1);
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	return ctx;
}

/* One end's TLS session on fd, handshake done; exits on failure. */
static SSL *tls_on(int fd, int server)
{
	SSL_CTX *ctx = tls_ctx(server);
	SSL *ssl = SSL_new(ctx);

	SSL_CTX_free(ctx); /* the session holds its own reference */
	if (!ssl || SSL_set_fd(ssl, fd) != 1 || (server ? SSL_accept(ssl) : SSL_connect(ssl)) != 1) {
		fprintf(stderr, "tcp_loopback: TLS handshake (%s): ", server ? "server" : "client");
		ERR_print_errors_fp(stderr);
		exit(1);
	}
	return ssl;
}

static void *sink(void *arg)
{
	char *buf = malloc(CHUNK);
	int fd = accept(lfd, NULL, NULL);
	unsigned long long got = 0;
	SSL *ssl = NULL;
	ssize_t n;

	if (fd >= 0 && tls_dir)
		ssl = tls_on(fd, 1);
	while (buf && fd >= 0 && (n = ssl ? SSL_read(ssl, buf, CHUNK) : read(fd, buf, CHUNK)) > 0)
		got += (unsigned long long)n;
	*(unsigned long long *)arg = got;
	free(buf);
	if (ssl)
		SSL_free(ssl);
	if (fd >= 0)
		close(fd);
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned long long mib = 2048, got = 0, sent = 0, total;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof sa;
	struct timespec t0, t1;
	pthread_t t;
	char *buf = calloc(1, CHUNK);
	SSL *ssl = NULL;
	int fd, one = 1, i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--tls") && i + 1 < argc)
			tls_dir = argv[++i];
		else if (argv[i][0] >= '0' && argv[i][0] <= '9')
			mib = strtoull(argv[i], NULL, 0);
		else {
			fprintf(stderr, "usage: tcp_loopback [MIB] [--tls DIR]\n");
			return 2;
		}
	}
	total = mib << 20;
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (!buf || lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lfd, 1) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sa, &sl) < 0) {
		perror("tcp_loopback: listen");
		return 1;
	}
	pthread_create(&t, NULL, sink, &got);
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		perror("tcp_loopback: connect");
		return 1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	if (tls_dir)
		ssl = tls_on(fd, 0);
	memset(buf, 0x5a, CHUNK); /* not zero: nothing on the way may skip it */
	/* the handshake is not part of the figure: a migration pays it once */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (sent < total) {
		ssize_t n = ssl ? SSL_write(ssl, buf, CHUNK) : write(fd, buf, CHUNK);
		if (n <= 0) {
			perror("tcp_loopback: write");
			return 1;
		}
		sent += (unsigned long long)n;
	}
	if (ssl)
		SSL_shutdown(ssl);
	shutdown(fd, SHUT_WR);
	pthread_join(t, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	if (got != sent) {
		fprintf(stderr, "tcp_loopback: sent %llu bytes, received %llu\n", sent, got);
		return 1;
	}
	if (ssl)
		printf("tls loopback: %llu MiB in %.3f s = %.0f MiB/s (one connection, mutual TLS, %s)\n",
		       mib, s, (double)mib / s, SSL_get_cipher_name(ssl));
	else
		printf("tcp loopback: %llu MiB in %.3f s = %.0f MiB/s (one connection, no TLS: the "
		       "ceiling)\n", mib, s, (double)mib / s);
	if (ssl)
		SSL_free(ssl);
	free(buf);
	close(fd);
	return 0;
}
