/* ctl_poke.c: a misbehaving control client: sends one kind of bad input and checks the daemon answers with an error and/or closes */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl_proto.h"

/*
 * Usage: ctl_poke SOCKET CASE
 *
 *   garbage    a 16-byte frame of bytes that are no protobuf message
 *   huge       a length of 0xffffffff
 *   over       a length of 1 MiB + 1 (one over the limit)
 *   version    a well-formed request of protocol major 2
 *   header     2 bytes of a length, then the connection is shut
 *   midframe   a length of 100 and 10 bytes of it, then shut
 *   stall      a length of 100 and 10 bytes of it, then nothing: the
 *              daemon must give up on the frame by itself
 *   flood      70 connections at once: those over max_clients (64) are
 *              told so and closed
 *   list       a good request (a check of the checker)
 *
 * Exit 0 when the daemon behaved: for bad input an error of the right
 * kind and/or a close, never a hang (30 s) and never a normal answer.
 */
static int dial(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		fprintf(stderr, "ctl_poke: connect %s: %s\n", path, strerror(errno));
		exit(2);
	}
	return fd;
}

static void put(int fd, const void *p, size_t len)
{
	if (send(fd, p, len, MSG_NOSIGNAL) != (ssize_t)len)
		fprintf(stderr, "ctl_poke: send: %s (the daemon may have closed already)\n",
			strerror(errno));
}

/*
 * Read answers until EOF.  Returns the first error code seen (0: none),
 * *answers the number of non-error answers, -1 on a hang.
 */
static int collect(int fd, int timeout_s, int *answers, int *closed)
{
	static uint8_t buf[CTL_MAX_FRAME + 8];
	size_t have = 0;
	uint32_t len, code;
	int first = 0, rc;
	char why[300];
	time_t end = time(NULL) + timeout_s;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	Pvmigrate__Ctl__ControlResponse *rsp;
	ssize_t n;

	*answers = 0;
	*closed = 0;
	for (;;) {
		if (time(NULL) > end)
			return -1;
		if (poll(&pfd, 1, 1000) <= 0)
			continue;
		n = read(fd, buf + have, sizeof buf - have);
		if (n <= 0) {
			*closed = 1;
			return first;
		}
		have += (size_t)n;
		while ((rc = ctl_frame_peek(buf, have, &len, why, sizeof why)) == 1) {
			rsp = ctl_response_decode(buf + 4, len, &code, why, sizeof why);
			if (!rsp) {
				fprintf(stderr, "ctl_poke: the daemon's answer is malformed: %s\n", why);
				exit(1);
			}
			if (rsp->body_case == PVMIGRATE__CTL__CONTROL_RESPONSE__BODY_ERROR) {
				printf("ctl_poke: error %u (%s): %s\n", rsp->error->code,
				       ctl_err_name(rsp->error->code), rsp->error->message);
				if (!first)
					first = (int)rsp->error->code;
			} else {
				printf("ctl_poke: answer (kind %d)\n", (int)rsp->body_case);
				(*answers)++;
			}
			ctl_response_free(rsp);
			memmove(buf, buf + 4 + len, have - 4 - len);
			have -= 4 + len;
		}
		if (rc < 0) {
			fprintf(stderr, "ctl_poke: the daemon sent a bad frame: %s\n", why);
			exit(1);
		}
	}
}

static int expect(int fd, int timeout_s, int want_code, int want_close)
{
	int answers, closed, code = collect(fd, timeout_s, &answers, &closed);

	close(fd);
	if (code < 0) {
		printf("ctl_poke: FAIL: no error and no close within %d s\n", timeout_s);
		return 1;
	}
	if (answers) {
		printf("ctl_poke: FAIL: %d normal answers to bad input\n", answers);
		return 1;
	}
	if (want_code && code != want_code) {
		printf("ctl_poke: FAIL: error %d, wanted %d (%s)\n", code, want_code,
		       ctl_err_name((uint32_t)want_code));
		return 1;
	}
	if (want_close && !closed) {
		printf("ctl_poke: FAIL: the connection stayed open\n");
		return 1;
	}
	printf("ctl_poke: ok: %s%s\n", code ? ctl_err_name((uint32_t)code) : "no error",
	       closed ? ", closed" : "");
	return 0;
}

static int good_list(int fd)
{
	Pvmigrate__Ctl__ControlRequest r = PVMIGRATE__CTL__CONTROL_REQUEST__INIT;
	Pvmigrate__Ctl__List l = PVMIGRATE__CTL__LIST__INIT;
	uint8_t *f;
	size_t len;
	int answers, closed;

	r.has_protocol_major = r.has_protocol_minor = r.has_id = 1;
	r.protocol_major = CTL_PROTO_MAJOR;
	r.id = 5;
	r.body_case = PVMIGRATE__CTL__CONTROL_REQUEST__BODY_LIST;
	r.list = &l;
	f = ctl_frame_pack(&r.base, &len);
	put(fd, f, len);
	free(f);
	shutdown(fd, SHUT_WR);
	collect(fd, 10, &answers, &closed);
	close(fd);
	return answers == 1 ? 0 : 1;
}

int main(int argc, char **argv)
{
	static const uint8_t garbage[] = { 0, 0, 0, 16, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
					   0xff, 0xff, 0xff, 0x07, 0x07, 0x07, 0x07, 0x07, 0x07 };
	static const uint8_t huge[] = { 0xff, 0xff, 0xff, 0xff };
	static const uint8_t over[] = { 0x00, 0x10, 0x00, 0x01 };
	static const uint8_t partial[] = { 0, 0, 0, 100, 8, 1, 16, 0, 24, 1, 98, 0, 0, 0 };
	const char *cs;
	int fd, fds[70], i, rc = 0;

	if (argc != 3) {
		fprintf(stderr, "usage: ctl_poke SOCKET CASE\n");
		return 2;
	}
	cs = argv[2];
	if (!strcmp(cs, "flood")) {
		int busy = 0, answers, closed;

		for (i = 0; i < 70; i++)
			fds[i] = dial(argv[1]);
		/* the last ones are over the limit: told so and closed */
		for (i = 64; i < 70; i++) {
			int code = collect(fds[i], 10, &answers, &closed);

			busy += code == CTL_ERR_BUSY && closed;
		}
		/* the first 64 still get service */
		rc = good_list(fds[0]);
		for (i = 1; i < 70; i++)
			close(fds[i]);
		printf("ctl_poke: %d of the 6 over the limit refused as busy; first one %s\n", busy,
		       rc ? "NOT served" : "served");
		return busy == 6 && !rc ? 0 : 1;
	}
	fd = dial(argv[1]);
	if (!strcmp(cs, "list"))
		return good_list(fd);
	if (!strcmp(cs, "garbage")) {
		put(fd, garbage, sizeof garbage);
		return expect(fd, 30, CTL_ERR_PROTOCOL, 1);
	}
	if (!strcmp(cs, "huge") || !strcmp(cs, "over")) {
		put(fd, cs[0] == 'h' ? huge : over, 4);
		return expect(fd, 30, CTL_ERR_PROTOCOL, 1);
	}
	if (!strcmp(cs, "version")) {
		/* protocol_major 2, minor 0, id 1, list {} */
		static const uint8_t v2[] = { 0, 0, 0, 8, 0x08, 2, 0x10, 0, 0x18, 1, 0x62, 0 };

		put(fd, v2, sizeof v2);
		return expect(fd, 30, CTL_ERR_VERSION, 1);
	}
	if (!strcmp(cs, "header")) {
		put(fd, huge, 2);
		shutdown(fd, SHUT_WR);
		return expect(fd, 30, 0, 1);
	}
	if (!strcmp(cs, "midframe")) {
		put(fd, partial, sizeof partial);
		shutdown(fd, SHUT_WR);
		return expect(fd, 30, 0, 1);
	}
	if (!strcmp(cs, "stall")) {
		put(fd, partial, sizeof partial);
		return expect(fd, 30, CTL_ERR_PROTOCOL, 1);
	}
	fprintf(stderr, "ctl_poke: unknown case %s\n", cs);
	return 2 + rc;
}
