/* tcp_loopback.c: the loopback TCP ceiling for migration benchmarks: one connection, N MiB, MiB/s */
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/*
 * The same shape of transfer a migration stream makes: one TCP connection
 * on 127.0.0.1, large writes from one thread, reads into a buffer on
 * another.  Plain TCP, no TLS: the ceiling, not what the daemons achieve.
 */
#define CHUNK (1u << 20)

static int lfd;
static unsigned long long total;

static void *sink(void *arg)
{
	char *buf = malloc(CHUNK);
	int fd = accept(lfd, NULL, NULL);
	unsigned long long got = 0;
	ssize_t n;

	while (buf && fd >= 0 && (n = read(fd, buf, CHUNK)) > 0)
		got += (unsigned long long)n;
	*(unsigned long long *)arg = got;
	free(buf);
	if (fd >= 0)
		close(fd);
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned long long mib = argc > 1 ? strtoull(argv[1], NULL, 0) : 2048, got = 0, sent = 0;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t sl = sizeof sa;
	struct timespec t0, t1;
	pthread_t t;
	char *buf = calloc(1, CHUNK);
	int fd, one = 1;

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
	memset(buf, 0x5a, CHUNK); /* not zero: nothing on the way may skip it */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (sent < total) {
		ssize_t n = write(fd, buf, CHUNK);
		if (n <= 0) {
			perror("tcp_loopback: write");
			return 1;
		}
		sent += (unsigned long long)n;
	}
	shutdown(fd, SHUT_WR);
	pthread_join(t, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	if (got != sent) {
		fprintf(stderr, "tcp_loopback: sent %llu bytes, received %llu\n", sent, got);
		return 1;
	}
	printf("tcp loopback: %llu MiB in %.3f s = %.0f MiB/s (one connection, no TLS: the ceiling)\n",
	       mib, s, (double)mib / s);
	free(buf);
	close(fd);
	return 0;
}
