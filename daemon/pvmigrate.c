/* pvmigrate.c: the pvmigrate client: boot, list, status, console, destroy and live migration through pvmigrated */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "client_out.h"
#include "ctl_proto.h"
#include "size_arg.h"

#ifndef PVM_VERSION
#define PVM_VERSION "0"
#endif
#ifndef PVM_SYSCONFDIR
#define PVM_SYSCONFDIR "/etc"
#endif
#define DEFAULT_CONF PVM_SYSCONFDIR "/pvmigrate/pvmigrate.conf"
#define DEFAULT_SOCKET "/run/pvmigrate/control"

typedef Pvmigrate__Ctl__ControlRequest Req;
typedef Pvmigrate__Ctl__ControlResponse Rsp;

int conf_socket_from_file(const char *path, char *socket, size_t len, char *why, size_t whylen);

static void usage(FILE *out)
{
	fprintf(out,
		"usage: pvmigrate [--socket PATH] [--config FILE] [--json] COMMAND\n"
		"  boot [--personality P] [--vcpus N] [--memory SIZE] [--net SPEC] [--name NAME]\n"
		"       IMAGE [--] [GUEST-ARGS...]\n"
		"  list\n"
		"  status GUEST\n"
		"  console [--follow] GUEST\n"
		"  destroy GUEST\n"
		"  hello\n"
		"  --from HV --to HV [--dest HOST[:PORT]] GUEST      (to another daemon)\n"
		"  --from HV --to HV [--runtime FILE] GUEST          (in place, on this host)\n"
		"Exit status: 0 done, 1 failed, 2 usage, 3 daemon unreachable, 4 refused or\n"
		"unavailable (pvmigrate(1)).\n");
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("pvmigrate: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (pvmigrate --help)\n", stderr);
	return EXIT_USAGE;
}

/* ---- talking to the daemon ---- */

static int fd = -1;

static int dial(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	if (strlen(path) >= sizeof sa.sun_path) {
		fprintf(stderr, "pvmigrate: socket path %s is too long\n", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		fprintf(stderr, "pvmigrate: cannot reach pvmigrated at %s: %s\n", path,
			strerror(errno));
		return -1;
	}
	return 0;
}

static int write_all(const uint8_t *p, size_t len)
{
	ssize_t n;

	while (len) {
		n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* 1 full, 0 clean EOF before any byte, -1 error or EOF mid-way. */
static int read_all(uint8_t *p, size_t len)
{
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		n = read(fd, p + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n == 0 && got == 0 ? 0 : -1;
		got += (size_t)n;
	}
	return 1;
}

static int send_request(Req *req)
{
	uint8_t *f;
	size_t len;
	int rc;

	req->has_protocol_major = req->has_protocol_minor = req->has_id = 1;
	req->protocol_major = CTL_PROTO_MAJOR;
	req->protocol_minor = CTL_PROTO_MINOR;
	req->id = 1;
	f = ctl_frame_pack(&req->base, &len);
	if (!f) {
		fprintf(stderr, "pvmigrate: the request does not fit a frame\n");
		return -1;
	}
	rc = write_all(f, len);
	free(f);
	/* A daemon that refuses us (wrong uid, busy) answers and closes at
	 * once, maybe before our request is written: its answer is still
	 * there to read, so a broken pipe is left for next_response(). */
	if (rc < 0 && (errno == EPIPE || errno == ECONNRESET))
		return 0;
	if (rc < 0)
		fprintf(stderr, "pvmigrate: the daemon closed the connection: %s\n", strerror(errno));
	return rc;
}

/* The next response, checked; NULL after printing why (exit 3). */
static Rsp *next_response(void)
{
	static uint8_t *body;
	uint8_t hdr[CTL_FRAME_HDR];
	uint32_t len, code;
	char why[300];
	Rsp *rsp;
	int rc;

	rc = read_all(hdr, sizeof hdr);
	if (rc <= 0) {
		fprintf(stderr, "pvmigrate: the daemon closed the connection without an answer\n");
		return NULL;
	}
	if (ctl_frame_peek(hdr, sizeof hdr, &len, why, sizeof why) < 0) {
		fprintf(stderr, "pvmigrate: bad answer from the daemon: %s\n", why);
		return NULL;
	}
	free(body);
	body = malloc(len ? len : 1);
	if (!body || read_all(body, len) != 1) {
		fprintf(stderr, "pvmigrate: the daemon's answer ended early\n");
		return NULL;
	}
	rsp = ctl_response_decode(body, len, &code, why, sizeof why);
	if (!rsp) {
		fprintf(stderr, "pvmigrate: bad answer from the daemon: %s\n", why);
		return NULL;
	}
	return rsp;
}

static int exit_for(uint32_t code)
{
	switch (code) {
	case CTL_ERR_INVALID:
		return EXIT_USAGE;
	case CTL_ERR_PROTOCOL:
		return EXIT_UNREACHABLE;
	case CTL_ERR_DENIED: case CTL_ERR_UNAVAILABLE: case CTL_ERR_NOT_IMPLEMENTED:
	case CTL_ERR_VERSION:
		return EXIT_REFUSED;
	default:
		return EXIT_FAILED;
	}
}

/* Send req and print every answer until the last; our exit status. */
static int converse(Req *req, struct out *o)
{
	Rsp *rsp;
	int rc = EXIT_OK, more;

	if (send_request(req) < 0)
		return EXIT_UNREACHABLE;
	do {
		rsp = next_response();
		if (!rsp) {
			out_end(o);
			return EXIT_UNREACHABLE;
		}
		more = rsp->has_more && rsp->more;
		if (rsp->body_case == PVMIGRATE__CTL__CONTROL_RESPONSE__BODY_ERROR) {
			out_error(o, rsp->error->code, rsp->error->message);
			rc = exit_for(rsp->error->code);
			more = 0;
		} else {
			out_response(o, rsp);
		}
		ctl_response_free(rsp);
	} while (more);
	out_end(o);
	return rc;
}

/* ---- commands ---- */

/* Each prep_* checks its words and fills req; nothing is sent yet. */
static int prep_boot(int argc, char **argv, Req *req)
{
	static Pvmigrate__Ctl__Boot b = PVMIGRATE__CTL__BOOT__INIT;
	static char image[PATH_MAX];
	uint64_t mem = 256ull << 20;
	unsigned long vcpus = 1;
	char *end;
	int i;

	b.personality = "native";
	b.net = "";
	b.name = "";
	for (i = 0; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--personality") && i + 1 < argc) {
			b.personality = argv[++i];
		} else if (!strcmp(a, "--vcpus") && i + 1 < argc) {
			vcpus = strtoul(argv[++i], &end, 10);
			if (*end || vcpus < 1 || vcpus > CTL_MAX_VCPUS)
				return usage_error("--vcpus takes 1 to %u", CTL_MAX_VCPUS);
		} else if (!strcmp(a, "--memory") && i + 1 < argc) {
			if (size_arg__parse(argv[++i], &mem) < 0 || !ctl_check_memory(mem))
				return usage_error("--memory takes a multiple of 2M from 2M to 3G");
		} else if (!strcmp(a, "--net") && i + 1 < argc) {
			b.net = argv[++i];
			if (!ctl_check_net(b.net))
				return usage_error("--net takes socket:/PATH or tap:IFNAME");
		} else if (!strcmp(a, "--name") && i + 1 < argc) {
			b.name = argv[++i];
			if (!ctl_check_guest_name(b.name))
				return usage_error("--name: '%s' is not a guest name", b.name);
		} else if (a[0] == '-' && a[1]) {
			return usage_error("boot: unknown option %s", a);
		} else {
			break;
		}
	}
	if (i >= argc)
		return usage_error("boot: no IMAGE");
	if (!realpath(argv[i], image)) {
		fprintf(stderr, "pvmigrate: image %s: %s\n", argv[i], strerror(errno));
		return EXIT_USAGE;
	}
	if (!ctl_check_personality(b.personality))
		return usage_error("--personality: '%s' is not a personality name", b.personality);
	b.image = image;
	i++;
	if (i < argc && !strcmp(argv[i], "--"))
		i++;
	b.n_args = (size_t)(argc - i);
	b.args = argv + i;
	b.has_vcpus = b.has_memory = 1;
	b.vcpus = (uint32_t)vcpus;
	b.memory = mem;
	req->body_case = PVMIGRATE__CTL__CONTROL_REQUEST__BODY_BOOT;
	req->boot = &b;
	return EXIT_OK;
}

static int prep_guest(const char *cmd, int argc, char **argv, Req *req)
{
	static Pvmigrate__Ctl__Status st = PVMIGRATE__CTL__STATUS__INIT;
	static Pvmigrate__Ctl__Console con = PVMIGRATE__CTL__CONSOLE__INIT;
	static Pvmigrate__Ctl__Destroy de = PVMIGRATE__CTL__DESTROY__INIT;
	int follow = 0;

	if (!strcmp(cmd, "console") && argc > 0 && (!strcmp(argv[0], "--follow") ||
						    !strcmp(argv[0], "-f"))) {
		follow = 1;
		argc--;
		argv++;
	}
	if (argc != 1)
		return usage_error("%s takes one GUEST", cmd);
	if (!ctl_check_guest_name(argv[0]))
		return usage_error("'%s' is not a guest name", argv[0]);
	if (!strcmp(cmd, "status")) {
		st.guest = argv[0];
		req->body_case = PVMIGRATE__CTL__CONTROL_REQUEST__BODY_STATUS;
		req->status = &st;
	} else if (!strcmp(cmd, "console")) {
		con.guest = argv[0];
		con.has_follow = 1;
		con.follow = follow;
		req->body_case = PVMIGRATE__CTL__CONTROL_REQUEST__BODY_CONSOLE;
		req->console = &con;
	} else {
		de.guest = argv[0];
		req->body_case = PVMIGRATE__CTL__CONTROL_REQUEST__BODY_DESTROY;
		req->destroy = &de;
	}
	return EXIT_OK;
}

static int prep_migrate(const char *from, const char *to, const char *dest, const char *runtime,
			const char *guest, Req *req)
{
	static Pvmigrate__Ctl__Migrate m = PVMIGRATE__CTL__MIGRATE__INIT;
	static char rt[PATH_MAX];
	char host[256];
	unsigned port;

	if (!from || !to)
		return usage_error("a migration needs --from HV and --to HV");
	if (!guest)
		return usage_error("a migration needs a GUEST");
	if (!ctl_check_personality(from) || !ctl_check_personality(to))
		return usage_error("--from/--to take a hypervisor name (native, kvm, ...)");
	if (!ctl_check_guest_name(guest))
		return usage_error("'%s' is not a guest name", guest);
	if (dest && !ctl_parse_dest(dest, host, sizeof host, &port))
		return usage_error("--dest takes HOST[:PORT]");
	if (runtime && dest)
		return usage_error("--runtime goes with a move in place (no --dest): a target daemon "
				   "runs its own runtime");
	if (runtime && strcmp(to, "kvm"))
		return usage_error("--runtime: only the kvm personality has a runtime");
	/* in place means this host: the daemon opens the file where we see it */
	if (runtime && !realpath(runtime, rt)) {
		fprintf(stderr, "pvmigrate: --runtime %s: %s\n", runtime, strerror(errno));
		return EXIT_USAGE;
	}
	m.runtime = runtime ? rt : "";
	m.guest = (char *)guest;
	m.from = (char *)from;
	m.to = (char *)to;
	m.dest = (char *)(dest ? dest : "");
	req->body_case = PVMIGRATE__CTL__CONTROL_REQUEST__BODY_MIGRATE;
	req->migrate = &m;
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	Req req = PVMIGRATE__CTL__CONTROL_REQUEST__INIT;
	Pvmigrate__Ctl__List list = PVMIGRATE__CTL__LIST__INIT;
	Pvmigrate__Ctl__Hello hello = PVMIGRATE__CTL__HELLO__INIT;
	const char *socket_path = NULL, *conf = NULL, *from = NULL, *to = NULL, *dest = NULL;
	const char *runtime = NULL;
	const char *cmd = NULL, *guest = NULL;
	static char conf_socket[108];
	struct out o = { 0 };
	char why[600];
	int i, rc, mig = 0;

	signal(SIGPIPE, SIG_IGN);
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--socket") && i + 1 < argc)
			socket_path = argv[++i];
		else if (!strcmp(a, "--config") && i + 1 < argc)
			conf = argv[++i];
		else if (!strcmp(a, "--json"))
			o.json = 1;
		else if (!strcmp(a, "--from") && i + 1 < argc)
			from = argv[++i], mig = 1;
		else if (!strcmp(a, "--to") && i + 1 < argc)
			to = argv[++i], mig = 1;
		else if (!strcmp(a, "--dest") && i + 1 < argc)
			dest = argv[++i], mig = 1;
		else if (!strcmp(a, "--runtime") && i + 1 < argc)
			runtime = argv[++i], mig = 1;
		else if (!strcmp(a, "-h") || !strcmp(a, "--help") || !strcmp(a, "help")) {
			usage(stdout);
			return EXIT_OK;
		} else if (!strcmp(a, "--version")) {
			printf("pvmigrate %s (control protocol %u.%u)\n", PVM_VERSION, CTL_PROTO_MAJOR,
			       CTL_PROTO_MINOR);
			return EXIT_OK;
		} else if (a[0] == '-') {
			return usage_error("unknown option %s", a);
		} else if (mig) {
			if (guest || i + 1 < argc)
				return usage_error("a migration takes one GUEST after the options");
			guest = a;
		} else {
			cmd = a;
			i++;
			break;
		}
	}
	if (!cmd && !mig)
		return usage_error("no command");
	if (cmd && mig)
		return usage_error("--from/--to/--dest/--runtime go with a GUEST, not with '%s'", cmd);
	/* where the daemon is: --socket, the configuration, $PVMIGRATE_SOCKET, the default */
	if (!socket_path && (conf || access(DEFAULT_CONF, R_OK) == 0)) {
		if (conf_socket_from_file(conf ? conf : DEFAULT_CONF, conf_socket, sizeof conf_socket,
					  why, sizeof why) < 0) {
			fprintf(stderr, "pvmigrate: configuration: %s\n", why);
			return EXIT_USAGE;
		}
		socket_path = conf_socket;
	}
	if (!socket_path)
		socket_path = getenv("PVMIGRATE_SOCKET");
	if (!socket_path || !socket_path[0])
		socket_path = DEFAULT_SOCKET;
	/* every word is checked before the daemon is bothered */
	if (mig) {
		rc = prep_migrate(from, to, dest, runtime, guest, &req);
		o.progress_bar = !o.json && isatty(STDOUT_FILENO);
	} else if (!strcmp(cmd, "boot")) {
		rc = prep_boot(argc - i, argv + i, &req);
	} else if (!strcmp(cmd, "list") || !strcmp(cmd, "hello")) {
		if (i < argc)
			return usage_error("%s takes no arguments", cmd);
		if (cmd[0] == 'l') {
			req.body_case = PVMIGRATE__CTL__CONTROL_REQUEST__BODY_LIST;
			req.list = &list;
		} else {
			hello.client = "pvmigrate " PVM_VERSION;
			req.body_case = PVMIGRATE__CTL__CONTROL_REQUEST__BODY_HELLO;
			req.hello = &hello;
		}
		rc = EXIT_OK;
	} else if (!strcmp(cmd, "status") || !strcmp(cmd, "console") || !strcmp(cmd, "destroy")) {
		rc = prep_guest(cmd, argc - i, argv + i, &req);
	} else {
		return usage_error("unknown command '%s'", cmd);
	}
	if (rc != EXIT_OK)
		return rc;
	if (dial(socket_path) < 0)
		return EXIT_UNREACHABLE;
	o.out = stdout;
	/* "move": in place; the result is told differently */
	o.cmd = mig ? (dest ? "migrate" : "move") : cmd;
	return converse(&req, &o);
}
