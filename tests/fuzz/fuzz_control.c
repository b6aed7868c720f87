/* fuzz_control.c: libFuzzer target: arbitrary bytes through the control protocol's frame reader and decoders, exactly as pvmigrated and pvmigrate run them */
#include <stdlib.h>
#include <string.h>

#include "ctl_proto.h"

/*
 * The input is what a client (or a peer) might send on a connection: the
 * daemon's reader takes frames off its front with ctl_frame_peek() and
 * decodes each body with ctl_request_decode().  Every body is also tried
 * as the other three messages (the client's and the peers' readers).
 * Whatever a decoder accepts must survive packing and decoding again with
 * the same meaning: a check that let through what it cannot re-encode
 * would hand the daemon a message it does not really understand.
 *
 * Seeds (corpus/control/): CTL_WRITE_SEEDS=DIR build/tests/daemon/test_ctl_proto
 */
typedef Pvmigrate__Ctl__ControlRequest Req;

static void again(const Req *req)
{
	uint8_t *f;
	size_t len;
	uint32_t n, code;
	char why[300];
	Req *back;

	f = ctl_frame_pack(&req->base, &len);
	if (!f)
		abort(); /* it came in one frame, so it fits in one */
	if (ctl_frame_peek(f, len, &n, why, sizeof why) != 1 || (size_t)n + CTL_FRAME_HDR != len)
		abort();
	back = ctl_request_decode(f + CTL_FRAME_HDR, n, &code, why, sizeof why);
	if (!back || back->id != req->id || back->body_case != req->body_case)
		abort();
	ctl_request_free(back);
	free(f);
}

static void one_body(const uint8_t *body, size_t len)
{
	Pvmigrate__Ctl__ControlResponse *rsp;
	Pvmigrate__Ctl__PeerRequest *preq;
	Pvmigrate__Ctl__PeerResponse *prsp;
	uint32_t code = 0;
	char why[300];
	Req *req;

	req = ctl_request_decode(body, len, &code, why, sizeof why);
	if (req) {
		again(req);
		ctl_request_free(req);
	} else if (code < 1 || code > CTL_ERR_MAX || !why[0]) {
		abort(); /* a refusal always has a known code and a reason */
	}
	rsp = ctl_response_decode(body, len, &code, why, sizeof why);
	if (rsp && rsp->body_case == PVMIGRATE__CTL__CONTROL_RESPONSE__BODY_CONSOLE &&
	    rsp->console->data.len > CTL_CONSOLE_CHUNK)
		abort();
	ctl_response_free(rsp);
	preq = ctl_peer_request_decode(body, len, &code, why, sizeof why);
	/* migrate and query share a union: only body_case says which is there */
	if (preq && preq->body_case == PVMIGRATE__CTL__PEER_REQUEST__BODY_MIGRATE &&
	    preq->migrate->memory % CTL_MEMORY_ALIGN)
		abort();
	if (preq && preq->body_case == PVMIGRATE__CTL__PEER_REQUEST__BODY_QUERY &&
	    (!preq->query->migration_id || strlen(preq->query->migration_id) != CTL_MIG_ID_LEN))
		abort(); /* a query the decoder let through names a move */
	ctl_peer_request_free(preq);
	prsp = ctl_peer_response_decode(body, len, &code, why, sizeof why);
	ctl_peer_response_free(prsp);
}

/* The text parsers on the input as a string. */
static void strings(const uint8_t *data, size_t size)
{
	char s[CTL_DEST_MAX + 40], host[256];
	uint8_t *f;
	size_t n = size < sizeof s - 1 ? size : sizeof s - 1, len;
	unsigned port;
	uint32_t code;
	char why[300];
	Pvmigrate__Ctl__ControlResponse *rsp;

	memcpy(s, data, n);
	s[n] = '\0';
	if (ctl_parse_dest(s, host, sizeof host, &port) && (port == 0 || port > 65535 || !host[0]))
		abort();
	ctl_check_net(s);
	ctl_check_guest_name(s);
	ctl_check_personality(s);
	/* any message text makes an error frame the client can read */
	f = ctl_error_frame(1, CTL_ERR_FAILED, s, &len);
	if (!f)
		abort();
	rsp = ctl_response_decode(f + CTL_FRAME_HDR, len - CTL_FRAME_HDR, &code, why, sizeof why);
	if (!rsp && s[0])
		abort();
	ctl_response_free(rsp);
	free(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t n;
	char why[128];
	int rc;

	strings(data, size);
	while ((rc = ctl_frame_peek(data, size, &n, why, sizeof why)) == 1) {
		one_body(data + CTL_FRAME_HDR, n);
		data += CTL_FRAME_HDR + (size_t)n;
		size -= CTL_FRAME_HDR + (size_t)n;
	}
	/* rc 0: a partial frame, the daemon waits; rc -1: it answers and closes */
	return 0;
}
