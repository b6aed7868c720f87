/* test_ctl_proto.c: the control protocol's framing, round trips and refusals (every field rule), as daemon, client and fuzzer use them */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/tap.h"
#include "ctl_proto.h"

/*
 * CTL_WRITE_SEEDS=DIR writes one valid frame per request kind into DIR
 * (tests/fuzz/corpus/control/ was made that way).
 */
typedef Pvmigrate__Ctl__ControlRequest Req;

static const char *seed_dir;

static void seed(const char *name, const uint8_t *f, size_t len)
{
	char path[512];
	FILE *out;

	if (!seed_dir)
		return;
	snprintf(path, sizeof path, "%s/%s", seed_dir, name);
	out = fopen(path, "wb");
	if (out) {
		fwrite(f, 1, len, out);
		fclose(out);
	}
}

static void req_init(Req *r)
{
	pvmigrate__ctl__control_request__init(r);
	r->has_protocol_major = r->has_protocol_minor = r->has_id = 1;
	r->protocol_major = CTL_PROTO_MAJOR;
	r->protocol_minor = CTL_PROTO_MINOR;
	r->id = 7;
}

/* Pack r, frame-check it, decode it: the error code (0: accepted). */
static uint32_t roundtrip(Req *r, const char *seed_name, Req **out)
{
	uint8_t *f;
	size_t len;
	uint32_t body, code = 0;
	char why[300] = "";
	Req *back;

	f = ctl_frame_pack(&r->base, &len);
	CHECK(f != NULL, "pack");
	if (!f)
		return 99;
	CHECK(ctl_frame_peek(f, len, &body, why, sizeof why) == 1 && body + CTL_FRAME_HDR == len,
	      "frame of %zu bytes", len);
	CHECK(ctl_frame_peek(f, len - 1, &body, why, sizeof why) == 0, "one byte short is partial");
	back = ctl_request_decode(f + CTL_FRAME_HDR, body, &code, why, sizeof why);
	if (back && seed_name)
		seed(seed_name, f, len);
	free(f);
	if (!back) {
		CHECK(why[0] != '\0', "a refusal says why");
		return code;
	}
	if (out)
		*out = back;
	else
		ctl_request_free(back);
	return 0;
}

static void test_framing(void)
{
	uint8_t hdr[8] = { 0 };
	uint32_t n;
	char why[128];

	CHECK(ctl_frame_peek(hdr, 3, &n, why, sizeof why) == 0, "3 bytes: need more");
	CHECK(ctl_frame_peek(hdr, 4, &n, why, sizeof why) == 1 && n == 0, "empty body is whole");
	hdr[1] = 0x10; /* 1 MiB exactly */
	CHECK(ctl_frame_peek(hdr, 4, &n, why, sizeof why) == 0 && n == CTL_MAX_FRAME, "1 MiB ok");
	hdr[3] = 1; /* 1 MiB + 1 */
	CHECK(ctl_frame_peek(hdr, 4, &n, why, sizeof why) == -1 && strstr(why, "over the limit"),
	      "1 MiB + 1 refused: %s", why);
	memset(hdr, 0xff, 4);
	CHECK(ctl_frame_peek(hdr, 4, &n, why, sizeof why) == -1, "0xffffffff refused");
}

static void test_requests(void)
{
	Pvmigrate__Ctl__Boot b = PVMIGRATE__CTL__BOOT__INIT;
	Pvmigrate__Ctl__Migrate m = PVMIGRATE__CTL__MIGRATE__INIT;
	Pvmigrate__Ctl__Console con = PVMIGRATE__CTL__CONSOLE__INIT;
	Pvmigrate__Ctl__Status st = PVMIGRATE__CTL__STATUS__INIT;
	Pvmigrate__Ctl__Destroy de = PVMIGRATE__CTL__DESTROY__INIT;
	Pvmigrate__Ctl__List li = PVMIGRATE__CTL__LIST__INIT;
	Pvmigrate__Ctl__Hello he = PVMIGRATE__CTL__HELLO__INIT;
	char *args[CTL_MAX_ARGS + 1], big[CTL_ARGS_MAX + 8], nl[] = "a\nb";
	char name32[] = "abcdefghijabcdefghijabcdefghijab";
	Req r, *back = NULL;
	unsigned i;

	req_init(&r);
	he.client = "test";
	r.body_case = PVMIGRATE__CTL__CONTROL_REQUEST__BODY_HELLO;
	r.hello = &he;
	CHECK(roundtrip(&r, "hello.bin", NULL) == 0, "hello");
	r.body_case = PVMIGRATE__CTL__CONTROL_REQUEST__BODY_LIST;
	r.list = &li;
	CHECK(roundtrip(&r, "list.bin", NULL) == 0, "list");

	/* boot: a full round trip, then each field broken in turn */
	args[0] = "seed=1";
	args[1] = "steps=3000";
	b.image = "/g/guest.elf";
	b.personality = "native";
	b.has_vcpus = b.has_memory = 1;
	b.vcpus = 2;
	b.memory = 256ull << 20;
	b.n_args = 2;
	b.args = args;
	b.net = "";
	b.name = "";
	r.body_case = PVMIGRATE__CTL__CONTROL_REQUEST__BODY_BOOT;
	r.boot = &b;
	CHECK(roundtrip(&r, "boot.bin", &back) == 0, "boot");
	if (back) {
		CHECK(back->id == 7 && back->boot->vcpus == 2 && back->boot->memory == 256ull << 20 &&
		      back->boot->n_args == 2 && !strcmp(back->boot->args[1], "steps=3000") &&
		      !strcmp(back->boot->image, "/g/guest.elf"), "boot fields survive");
		ctl_request_free(back);
	}
	b.image = "guest.elf";
	CHECK(roundtrip(&r, NULL, NULL) == CTL_ERR_INVALID, "relative image");
	b.image = "/g/guest.elf";
	b.personality = "KVM";
	CHECK(roundtrip(&r, NULL, NULL) == CTL_ERR_INVALID, "upper-case personality");
	b.personality = "l4"; /* a well-formed name: refusing it is the daemon's business */
	CHECK(roundtrip(&r, NULL, NULL) == 0, "l4 is well-formed");
	b.personality = "native";
	b.vcpus = 0;
	CHECK(roundtrip(&r, NULL, NULL) == CTL_ERR_INVALID, "0 vCPUs");
	b.vcpus = CTL_MAX_VCPUS + 1;
	CHECK(roundtrip(&r, NULL, NULL) == CTL_ERR_INVALID, "17 vCPUs");
	b.vcpus = 1;
	b.memory = 3ull << 20;
	CHECK(roundtrip(&r, NULL, NULL) == CTL_ERR_INVALID, "3 MiB is not a 2 MiB multiple");
	b.memory = 4ull << 30;
	CHECK(roundtrip(&r, NULL, NULL) == CTL_ERR_INVALID, "4 GiB");
	b.has_memory = 0;
	CHECK(roundtrip(&r, NULL, NULL) == CTL_ERR_INVALID, "memory missing");
	b.has_memory = 1;
	b.memory = 64ull << 20;
	for (i = 0; i <= CTL_MAX_ARGS; i++)
		args[i] = "x";
	b.n_args = CTL_MAX_ARGS + 1;
	CHECK(roundtrip(&r, NULL, NULL) == CTL_ERR_INVALID, "65 words");
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	args[0] = big;
	b.n_args = 1;
	CHECK(roundtrip(&r, NULL, NULL) == CTL_ERR_INVALID, "args too long");
	args[0] = nl;
	CHECK(roundtrip(&r, NULL, NULL) == CTL_ERR_INVALID, "newline in a word");
	args[0] = "ok";
	b.net = "udp:1.2.3.4";
	CHECK(roundtrip(&r, NULL, NULL) == CTL_ERR_INVALID, "net kind");
	b.net = "socket:/tmp/nic.sock";
	CHECK(roundtrip(&r, NULL, NULL) == 0, "net socket");
	b.net = "tap:averyveryverylongname";
	CHECK(roundtrip(&r, NULL, NULL) == CTL_ERR_INVALID, "tap name over 15");
	b.net = "";
	b.name = "-x";
	CHECK(roundtrip(&r, NULL, NULL) == CTL_ERR_INVALID, "name starting with '-'");
	b.name = name32;
	CHECK(roundtrip(&r, NULL, NULL) == CTL_ERR_INVALID, "32-character name");
	name32[31] = '\0';
	CHECK(roundtrip(&r, NULL, NULL) == 0, "31-character name");
	b.name = "../etc";
	CHECK(roundtrip(&r, NULL, NULL) == CTL_ERR_INVALID, "name with '/'");
	b.name = "";

	st.guest = "dom1";
	r.body_case = PVMIGRATE__CTL__CONTROL_REQUEST__BODY_STATUS;
	r.status = &st;
	CHECK(roundtrip(&r, "status.bin", NULL) == 0, "status");
	st.guest = NULL;
	CHECK(roundtrip(&r, NULL, NULL) == CTL_ERR_INVALID, "status without a guest");
	de.guest = "dom1";
	r.body_case = PVMIGRATE__CTL__CONTROL_REQUEST__BODY_DESTROY;
	r.destroy = &de;
	CHECK(roundtrip(&r, "destroy.bin", NULL) == 0, "destroy");
	con.guest = "dom1";
	r.body_case = PVMIGRATE__CTL__CONTROL_REQUEST__BODY_CONSOLE;
	r.console = &con;
	CHECK(roundtrip(&r, NULL, NULL) == CTL_ERR_INVALID, "console without follow");
	con.has_follow = con.follow = 1;
	CHECK(roundtrip(&r, "console.bin", NULL) == 0, "console");

	m.guest = "dom1";
	m.from = "native";
	m.to = "native";
	m.dest = "127.0.0.1:7481";
	r.body_case = PVMIGRATE__CTL__CONTROL_REQUEST__BODY_MIGRATE;
	r.migrate = &m;
	CHECK(roundtrip(&r, "migrate.bin", NULL) == 0, "migrate");
	m.dest = "[::1]:7481";
	CHECK(roundtrip(&r, NULL, NULL) == 0, "migrate to [::1]:7481");
	m.dest = "";
	CHECK(roundtrip(&r, NULL, NULL) == 0, "in place");
	m.dest = "host:0";
	CHECK(roundtrip(&r, NULL, NULL) == CTL_ERR_INVALID, "port 0");
	m.dest = "host:65536";
	CHECK(roundtrip(&r, NULL, NULL) == CTL_ERR_INVALID, "port 65536");
	m.dest = "a b";
	CHECK(roundtrip(&r, NULL, NULL) == CTL_ERR_INVALID, "space in a host");
	m.dest = "host";
	m.to = NULL;
	CHECK(roundtrip(&r, NULL, NULL) == CTL_ERR_INVALID, "migrate without --to");
	m.to = "kvm";

	/* version and envelope */
	r.protocol_major = 2;
	CHECK(roundtrip(&r, "version2.bin", NULL) == CTL_ERR_VERSION, "major 2");
	r.protocol_major = CTL_PROTO_MAJOR;
	r.protocol_minor = 99; /* a newer minor is fine */
	CHECK(roundtrip(&r, NULL, NULL) == 0, "minor 99");
	r.has_protocol_major = 0;
	CHECK(roundtrip(&r, NULL, NULL) == CTL_ERR_PROTOCOL, "no version");
	r.has_protocol_major = 1;
	r.has_id = 0;
	CHECK(roundtrip(&r, NULL, NULL) == CTL_ERR_PROTOCOL, "no id");
	r.has_id = 1;
	r.body_case = PVMIGRATE__CTL__CONTROL_REQUEST__BODY__NOT_SET;
	CHECK(roundtrip(&r, NULL, NULL) == CTL_ERR_PROTOCOL, "no body");
}

static void test_garbage(void)
{
	static const uint8_t junk[] = { 0xff, 0xff, 0xff, 0xff, 0x0f, 0x07, 0x00 };
	uint32_t code = 0;
	char why[200];

	CHECK(ctl_request_decode(junk, sizeof junk, &code, why, sizeof why) == NULL &&
	      code == CTL_ERR_PROTOCOL, "garbage is a protocol error");
	CHECK(ctl_request_decode(junk, 0, &code, why, sizeof why) == NULL &&
	      code == CTL_ERR_PROTOCOL, "an empty message has no version");
}

static void test_responses(void)
{
	Pvmigrate__Ctl__ControlResponse *rsp;
	Pvmigrate__Ctl__ControlResponse cr = PVMIGRATE__CTL__CONTROL_RESPONSE__INIT;
	Pvmigrate__Ctl__ConsoleData cd = PVMIGRATE__CTL__CONSOLE_DATA__INIT;
	static uint8_t data[CTL_CONSOLE_CHUNK + 1];
	uint8_t *f;
	size_t len;
	uint32_t code;
	char why[200];

	f = ctl_error_frame(3, CTL_ERR_NOT_FOUND, "no guest named \x1b[2Jx", &len);
	rsp = f ? ctl_response_decode(f + 4, len - 4, &code, why, sizeof why) : NULL;
	CHECK(rsp && rsp->id == 3 && rsp->body_case == PVMIGRATE__CTL__CONTROL_RESPONSE__BODY_ERROR &&
	      rsp->error->code == CTL_ERR_NOT_FOUND && !strchr(rsp->error->message, 0x1b),
	      "error frame, escape sequence defused");
	ctl_response_free(rsp);
	free(f);

	cr.has_protocol_major = cr.has_protocol_minor = cr.has_id = 1;
	cr.protocol_major = CTL_PROTO_MAJOR;
	cr.id = 1;
	cd.has_data = cd.has_offset = 1;
	cd.data.data = data;
	cd.data.len = sizeof data;
	cr.body_case = PVMIGRATE__CTL__CONTROL_RESPONSE__BODY_CONSOLE;
	cr.console = &cd;
	f = ctl_frame_pack(&cr.base, &len);
	CHECK(f && !ctl_response_decode(f + 4, len - 4, &code, why, sizeof why),
	      "a console chunk over 64 KiB is refused");
	free(f);
	cd.data.len = CTL_CONSOLE_CHUNK;
	f = ctl_frame_pack(&cr.base, &len);
	rsp = f ? ctl_response_decode(f + 4, len - 4, &code, why, sizeof why) : NULL;
	CHECK(rsp != NULL, "64 KiB chunk: %s", rsp ? "" : why);
	ctl_response_free(rsp);
	free(f);
	cr.protocol_major = 3;
	f = ctl_frame_pack(&cr.base, &len);
	CHECK(f && !ctl_response_decode(f + 4, len - 4, &code, why, sizeof why) &&
	      code == CTL_ERR_VERSION && strstr(why, "3.0"), "daemon of major 3 refused: %s", why);
	free(f);
}

/* GuestInfo.net (minor 3): a NIC spec comes through, a malformed one is refused */
static void test_guest_net(void)
{
	Pvmigrate__Ctl__ControlResponse *rsp;
	Pvmigrate__Ctl__ControlResponse cr = PVMIGRATE__CTL__CONTROL_RESPONSE__INIT;
	Pvmigrate__Ctl__GuestInfo gi = PVMIGRATE__CTL__GUEST_INFO__INIT;
	uint8_t *f;
	size_t len;
	uint32_t code;
	char why[200];

	cr.has_protocol_major = cr.has_protocol_minor = cr.has_id = 1;
	cr.protocol_major = CTL_PROTO_MAJOR;
	cr.protocol_minor = CTL_PROTO_MINOR;
	cr.id = 2;
	cr.body_case = PVMIGRATE__CTL__CONTROL_RESPONSE__BODY_GUEST;
	cr.guest = &gi;
	gi.name = "dom1";
	gi.personality = "kvm";
	gi.state = "running";
	gi.has_pid = gi.has_vcpus = gi.has_memory = gi.has_uptime_ms = 1;
	gi.vcpus = 1;
	gi.memory = CTL_MIN_MEMORY;
	gi.net = "socket:/run/nic.sock";
	f = ctl_frame_pack(&cr.base, &len);
	rsp = f ? ctl_response_decode(f + 4, len - 4, &code, why, sizeof why) : NULL;
	CHECK(rsp && rsp->guest->net && !strcmp(rsp->guest->net, "socket:/run/nic.sock"),
	      "guest info carries its net: %s", rsp ? "" : why);
	ctl_response_free(rsp);
	free(f);
	gi.net = "socket:relative";
	f = ctl_frame_pack(&cr.base, &len);
	CHECK(f && !ctl_response_decode(f + 4, len - 4, &code, why, sizeof why) &&
	      strstr(why, "net:"), "guest info with a malformed net refused: %s", why);
	free(f);
}

static void test_peer(void)
{
	Pvmigrate__Ctl__PeerRequest pr = PVMIGRATE__CTL__PEER_REQUEST__INIT;
	Pvmigrate__Ctl__PeerMigrate pm = PVMIGRATE__CTL__PEER_MIGRATE__INIT;
	Pvmigrate__Ctl__PeerRequest *back;
	uint8_t *f;
	size_t len;
	uint32_t code;
	char why[200];

	pr.has_protocol_major = pr.has_protocol_minor = 1;
	pr.protocol_major = CTL_PROTO_MAJOR;
	pm.guest = "dom1";
	pm.from = pm.to = "native";
	pm.has_vcpus = pm.has_memory = 1;
	pm.vcpus = 2;
	pm.memory = 64ull << 20;
	pm.image = "/g/guest.elf";
	pr.body_case = PVMIGRATE__CTL__PEER_REQUEST__BODY_MIGRATE;
	pr.migrate = &pm;
	f = ctl_frame_pack(&pr.base, &len);
	back = f ? ctl_peer_request_decode(f + 4, len - 4, &code, why, sizeof why) : NULL;
	CHECK(back && back->migrate->vcpus == 2, "peer request round trip");
	if (back)
		seed("peer.bin", f, len);
	ctl_peer_request_free(back);
	free(f);
	pm.memory = 1;
	f = ctl_frame_pack(&pr.base, &len);
	CHECK(f && !ctl_peer_request_decode(f + 4, len - 4, &code, why, sizeof why) &&
	      code == CTL_ERR_INVALID, "peer request with 1 byte of RAM refused");
	free(f);
}

int main(void)
{
	seed_dir = getenv("CTL_WRITE_SEEDS");
	test_framing();
	test_requests();
	test_garbage();
	test_responses();
	test_guest_net();
	test_peer();
	return tap_done("test_ctl_proto");
}
