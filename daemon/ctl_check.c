/* ctl_check.c: the control protocol's decoders and the field-by-field checks every message passes before anybody acts on it */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_proto.h"

typedef Pvmigrate__Ctl__ControlRequest Req;
typedef Pvmigrate__Ctl__ControlResponse Rsp;


static int check_version(int has_major, uint32_t major, int has_minor, uint32_t minor,
			 uint32_t *code, char *why, size_t whylen)
{
	if (!has_major || !has_minor) {
		*code = CTL_ERR_PROTOCOL;
		return ctl_bad(why, whylen, "message: no protocol version");
	}
	if (major != CTL_PROTO_MAJOR) {
		*code = CTL_ERR_VERSION;
		return ctl_bad(why, whylen, "protocol version %u.%u is not spoken here (this side speaks %u.x)",
			   major, minor, CTL_PROTO_MAJOR);
	}
	return 0;
}

static int check_guest(const char *s, const char *field, char *why, size_t whylen)
{
	if (!ctl_check_guest_name(s))
		return ctl_bad(why, whylen, "%s: not a guest name (1 to %d of A-Z a-z 0-9 _ . -)", field,
			   CTL_NAME_MAX);
	return 0;
}

static int check_pers(const char *s, const char *field, char *why, size_t whylen)
{
	if (!ctl_check_personality(s))
		return ctl_bad(why, whylen, "%s: not a personality name (1 to %d of a-z 0-9 _ -)", field,
			   CTL_NAME_MAX);
	return 0;
}

static int check_image(const char *s, char *why, size_t whylen)
{
	if (!ctl_printable(s, CTL_PATH_MAX) || s[0] != '/')
		return ctl_bad(why, whylen, "image: must be an absolute path of at most %d characters",
			   CTL_PATH_MAX);
	return 0;
}

static int check_vcpus_memory(int has_vcpus, uint32_t vcpus, int has_memory, uint64_t memory,
			      char *why, size_t whylen)
{
	if (!has_vcpus || vcpus < 1 || vcpus > CTL_MAX_VCPUS)
		return ctl_bad(why, whylen, "vcpus: must be 1 to %u", CTL_MAX_VCPUS);
	if (!has_memory || !ctl_check_memory(memory))
		return ctl_bad(why, whylen, "memory: must be a multiple of 2 MiB from 2 MiB to 3 GiB");
	return 0;
}

static int check_boot(const Pvmigrate__Ctl__Boot *b, char *why, size_t whylen)
{
	size_t i, total = 0;

	if (check_image(b->image, why, whylen) || check_pers(b->personality, "personality", why, whylen) ||
	    check_vcpus_memory(b->has_vcpus, b->vcpus, b->has_memory, b->memory, why, whylen))
		return -1;
	if (b->n_args > CTL_MAX_ARGS)
		return ctl_bad(why, whylen, "args: more than %d words", CTL_MAX_ARGS);
	for (i = 0; i < b->n_args; i++) {
		if (!ctl_printable(b->args[i], CTL_ARGS_MAX))
			return ctl_bad(why, whylen, "args: word %zu is empty or has control characters", i);
		total += strlen(b->args[i]) + 1;
		if (total > CTL_ARGS_MAX)
			return ctl_bad(why, whylen, "args: longer than %d characters", CTL_ARGS_MAX);
	}
	if (!ctl_check_net(b->net))
		return ctl_bad(why, whylen, "net: must be socket:/PATH or tap:IFNAME");
	if (b->name && b->name[0] && check_guest(b->name, "name", why, whylen))
		return -1;
	return 0;
}

static int check_dest(const char *dest, char *why, size_t whylen)
{
	char host[256];
	unsigned port;

	if (dest && dest[0] && !ctl_parse_dest(dest, host, sizeof host, &port))
		return ctl_bad(why, whylen, "dest: must be HOST[:PORT] (port 1 to 65535)");
	return 0;
}

int ctl_request_check(const Req *req, uint32_t *code, char *why, size_t whylen)
{
	int rc = -1;

	if (check_version(req->has_protocol_major, req->protocol_major, req->has_protocol_minor,
			  req->protocol_minor, code, why, whylen))
		return -1;
	*code = CTL_ERR_PROTOCOL;
	if (!req->has_id)
		return ctl_bad(why, whylen, "request: no id");
	*code = CTL_ERR_INVALID;
	switch (req->body_case) {
	case PVMIGRATE__CTL__CONTROL_REQUEST__BODY_HELLO:
		rc = req->hello->client && !ctl_printable(req->hello->client, 128)
			     ? ctl_bad(why, whylen, "hello: client: over 128 characters or unprintable")
			     : 0;
		break;
	case PVMIGRATE__CTL__CONTROL_REQUEST__BODY_BOOT:
		rc = check_boot(req->boot, why, whylen);
		break;
	case PVMIGRATE__CTL__CONTROL_REQUEST__BODY_LIST:
		rc = 0;
		break;
	case PVMIGRATE__CTL__CONTROL_REQUEST__BODY_STATUS:
		rc = check_guest(req->status->guest, "status: guest", why, whylen);
		break;
	case PVMIGRATE__CTL__CONTROL_REQUEST__BODY_CONSOLE:
		rc = check_guest(req->console->guest, "console: guest", why, whylen);
		if (!rc && !req->console->has_follow)
			rc = ctl_bad(why, whylen, "console: follow: missing");
		break;
	case PVMIGRATE__CTL__CONTROL_REQUEST__BODY_DESTROY:
		rc = check_guest(req->destroy->guest, "destroy: guest", why, whylen);
		break;
	case PVMIGRATE__CTL__CONTROL_REQUEST__BODY_MIGRATE:
		rc = check_guest(req->migrate->guest, "migrate: guest", why, whylen);
		if (!rc)
			rc = check_pers(req->migrate->from, "migrate: from", why, whylen);
		if (!rc)
			rc = check_pers(req->migrate->to, "migrate: to", why, whylen);
		if (!rc)
			rc = check_dest(req->migrate->dest, why, whylen);
		if (!rc && req->migrate->runtime && req->migrate->runtime[0] &&
		    (!ctl_printable(req->migrate->runtime, CTL_PATH_MAX) ||
		     req->migrate->runtime[0] != '/'))
			rc = ctl_bad(why, whylen, "migrate: runtime: must be an absolute path of at "
				     "most %d characters", CTL_PATH_MAX);
		break;
	default:
		*code = CTL_ERR_PROTOCOL;
		rc = ctl_bad(why, whylen, "request: no request in the message (a newer client?)");
		break;
	}
	return rc;
}

static int opt_text(const char *s, size_t max)
{
	return !s || !s[0] || ctl_printable(s, max);
}

static int check_guest_info(const Pvmigrate__Ctl__GuestInfo *g, char *why, size_t whylen)
{
	if (!ctl_check_guest_name(g->name) || !ctl_check_personality(g->personality) ||
	    !ctl_printable(g->state, 32) || !opt_text(g->image, CTL_PATH_MAX) ||
	    !opt_text(g->runner, 32) || !opt_text(g->detail, CTL_MSG_MAX))
		return ctl_bad(why, whylen, "guest info: a name, state or text field is malformed");
	if (!ctl_check_net(g->net))
		return ctl_bad(why, whylen, "guest info: %s: net: must be socket:/PATH or tap:IFNAME",
			   g->name);
	if (!g->has_pid || !g->has_vcpus || !g->has_memory || !g->has_uptime_ms)
		return ctl_bad(why, whylen, "guest info: %s: a required number is missing", g->name);
	return 0;
}

int ctl_response_check(const Rsp *rsp, char *why, size_t whylen)
{
	size_t i;

	if (!rsp->has_id)
		return ctl_bad(why, whylen, "response: no id");
	switch (rsp->body_case) {
	case PVMIGRATE__CTL__CONTROL_RESPONSE__BODY_OK:
		return opt_text(rsp->ok->message, CTL_MSG_MAX) ? 0
			: ctl_bad(why, whylen, "ok: message too long or unprintable");
	case PVMIGRATE__CTL__CONTROL_RESPONSE__BODY_ERROR:
		if (!rsp->error->has_code || !rsp->error->code ||
		    !ctl_printable(rsp->error->message, CTL_MSG_MAX))
			return ctl_bad(why, whylen, "error: no code or no readable message");
		return 0;
	case PVMIGRATE__CTL__CONTROL_RESPONSE__BODY_HELLO:
		if (!ctl_printable(rsp->hello->daemon, 128) || rsp->hello->n_available > 16 ||
		    rsp->hello->n_known > 16 || !opt_text(rsp->hello->peer_listen, CTL_DEST_MAX))
			return ctl_bad(why, whylen, "hello: malformed");
		for (i = 0; i < rsp->hello->n_available; i++)
			if (!ctl_check_personality(rsp->hello->available[i]))
				return ctl_bad(why, whylen, "hello: available: malformed name");
		for (i = 0; i < rsp->hello->n_known; i++)
			if (!ctl_check_personality(rsp->hello->known[i]))
				return ctl_bad(why, whylen, "hello: known: malformed name");
		return 0;
	case PVMIGRATE__CTL__CONTROL_RESPONSE__BODY_LIST:
		if (rsp->list->n_guests > CTL_MAX_GUESTS)
			return ctl_bad(why, whylen, "list: more than %u guests", CTL_MAX_GUESTS);
		for (i = 0; i < rsp->list->n_guests; i++)
			if (check_guest_info(rsp->list->guests[i], why, whylen))
				return -1;
		return 0;
	case PVMIGRATE__CTL__CONTROL_RESPONSE__BODY_GUEST:
		return check_guest_info(rsp->guest, why, whylen);
	case PVMIGRATE__CTL__CONTROL_RESPONSE__BODY_CONSOLE:
		if (!rsp->console->has_data || !rsp->console->has_offset ||
		    rsp->console->data.len > CTL_CONSOLE_CHUNK)
			return ctl_bad(why, whylen, "console: no data, no offset, or over %u bytes",
				   CTL_CONSOLE_CHUNK);
		return 0;
	case PVMIGRATE__CTL__CONTROL_RESPONSE__BODY_PROGRESS:
		if (!ctl_printable(rsp->progress->phase, 32) || !rsp->progress->has_bytes ||
		    !rsp->progress->has_total || !rsp->progress->has_rate)
			return ctl_bad(why, whylen, "progress: malformed");
		return 0;
	case PVMIGRATE__CTL__CONTROL_RESPONSE__BODY_RESULT:
		if (!rsp->result->has_downtime_us || !rsp->result->has_total_us ||
		    !rsp->result->has_bytes || !ctl_check_guest_name(rsp->result->dest_guest) ||
		    (rsp->result->personality && rsp->result->personality[0] &&
		     !ctl_check_personality(rsp->result->personality)) ||
		    (rsp->result->ram && strcmp(rsp->result->ram, "shared") &&
		     strcmp(rsp->result->ram, "copied")) || !opt_text(rsp->result->note, CTL_MSG_MAX) ||
		    (rsp->result->data_path && strcmp(rsp->result->data_path, "relay") &&
		     strcmp(rsp->result->data_path, "direct")))
			return ctl_bad(why, whylen, "result: malformed");
		return 0;
	default:
		return ctl_bad(why, whylen, "response: no answer in the message (a newer daemon?)");
	}
}

/* ---- decoders ---- */

/*
 * protobuf-c accepts some encodings it would never produce (a field number
 * 0 spelled as a two-byte varint, found by fuzz-control) and then packs
 * them into bytes it refuses.  A message the daemon acts on must mean the
 * same after a re-encode, so each decoder packs what it got and unpacks
 * that once more.  Control messages are small: the cost is nothing.
 */
static int reencodes(const ProtobufCMessage *m)
{
	size_t n = protobuf_c_message_get_packed_size(m);
	uint8_t *buf = malloc(n ? n : 1);
	ProtobufCMessage *back;

	if (!buf)
		return 0;
	protobuf_c_message_pack(m, buf);
	back = protobuf_c_message_unpack(m->descriptor, NULL, n, buf);
	free(buf);
	if (!back)
		return 0;
	protobuf_c_message_free_unpacked(back, NULL);
	return 1;
}

Req *ctl_request_decode(const uint8_t *body, size_t len, uint32_t *code, char *why, size_t whylen)
{
	Req *req = pvmigrate__ctl__control_request__unpack(NULL, len, body);

	if (req && !reencodes(&req->base)) {
		pvmigrate__ctl__control_request__free_unpacked(req, NULL);
		req = NULL;
	}
	if (!req) {
		*code = CTL_ERR_PROTOCOL;
		ctl_bad(why, whylen, "request: not a ControlRequest message");
		return NULL;
	}
	if (ctl_request_check(req, code, why, whylen) < 0) {
		pvmigrate__ctl__control_request__free_unpacked(req, NULL);
		return NULL;
	}
	return req;
}

void ctl_request_free(Req *req)
{
	if (req)
		pvmigrate__ctl__control_request__free_unpacked(req, NULL);
}

Rsp *ctl_response_decode(const uint8_t *body, size_t len, uint32_t *code, char *why, size_t whylen)
{
	Rsp *rsp = pvmigrate__ctl__control_response__unpack(NULL, len, body);

	if (rsp && !reencodes(&rsp->base)) {
		pvmigrate__ctl__control_response__free_unpacked(rsp, NULL);
		rsp = NULL;
	}
	*code = CTL_ERR_PROTOCOL;
	if (!rsp) {
		ctl_bad(why, whylen, "response: not a ControlResponse message");
		return NULL;
	}
	if (check_version(rsp->has_protocol_major, rsp->protocol_major, rsp->has_protocol_minor,
			  rsp->protocol_minor, code, why, whylen) < 0 ||
	    ctl_response_check(rsp, why, whylen) < 0) {
		pvmigrate__ctl__control_response__free_unpacked(rsp, NULL);
		return NULL;
	}
	return rsp;
}

void ctl_response_free(Rsp *rsp)
{
	if (rsp)
		pvmigrate__ctl__control_response__free_unpacked(rsp, NULL);
}

/* PeerMigrate.migration_id, PeerQuery's: 32 lowercase hex digits. */
static int check_mig_id(const char *s, const char *field, char *why, size_t whylen)
{
	size_t i;

	for (i = 0; s && i < CTL_MIG_ID_LEN; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			break;
	if (!s || i != CTL_MIG_ID_LEN || s[i])
		return ctl_bad(why, whylen, "%s: must be %u lowercase hex digits", field,
			       CTL_MIG_ID_LEN);
	return 0;
}

Pvmigrate__Ctl__PeerRequest *ctl_peer_request_decode(const uint8_t *body, size_t len,
						     uint32_t *code, char *why, size_t whylen)
{
	Pvmigrate__Ctl__PeerRequest *req = pvmigrate__ctl__peer_request__unpack(NULL, len, body);
	const Pvmigrate__Ctl__PeerMigrate *m;
	int rc;

	if (req && !reencodes(&req->base)) {
		pvmigrate__ctl__peer_request__free_unpacked(req, NULL);
		req = NULL;
	}
	*code = CTL_ERR_PROTOCOL;
	if (!req) {
		ctl_bad(why, whylen, "peer request: not a PeerRequest message");
		return NULL;
	}
	rc = check_version(req->has_protocol_major, req->protocol_major, req->has_protocol_minor,
			   req->protocol_minor, code, why, whylen);
	if (!rc && req->body_case == PVMIGRATE__CTL__PEER_REQUEST__BODY_QUERY) {
		*code = CTL_ERR_INVALID;
		rc = check_mig_id(req->query->migration_id, "peer query: migration_id", why, whylen);
		if (rc) {
			pvmigrate__ctl__peer_request__free_unpacked(req, NULL);
			return NULL;
		}
		return req;
	}
	if (!rc && req->body_case != PVMIGRATE__CTL__PEER_REQUEST__BODY_MIGRATE) {
		*code = CTL_ERR_PROTOCOL;
		rc = ctl_bad(why, whylen, "peer request: no request in the message");
	}
	if (!rc) {
		m = req->migrate;
		*code = CTL_ERR_INVALID;
		rc = check_guest(m->guest, "peer: guest", why, whylen);
		if (!rc)
			rc = check_pers(m->from, "peer: from", why, whylen);
		if (!rc)
			rc = check_pers(m->to, "peer: to", why, whylen);
		if (!rc)
			rc = check_vcpus_memory(m->has_vcpus, m->vcpus, m->has_memory, m->memory, why,
						whylen);
		if (!rc && m->image && m->image[0])
			rc = check_image(m->image, why, whylen);
		if (!rc && m->has_console && m->console.len > CTL_CONSOLE_CHUNK)
			rc = ctl_bad(why, whylen, "peer: console: over %u bytes", CTL_CONSOLE_CHUNK);
		if (!rc && !ctl_check_net(m->net))
			rc = ctl_bad(why, whylen, "peer: net: must be socket:/PATH or tap:IFNAME");
		if (!rc && m->migration_id)
			rc = check_mig_id(m->migration_id, "peer: migration_id", why, whylen);
	}
	if (rc) {
		pvmigrate__ctl__peer_request__free_unpacked(req, NULL);
		return NULL;
	}
	return req;
}

void ctl_peer_request_free(Pvmigrate__Ctl__PeerRequest *req)
{
	if (req)
		pvmigrate__ctl__peer_request__free_unpacked(req, NULL);
}

Pvmigrate__Ctl__PeerResponse *ctl_peer_response_decode(const uint8_t *body, size_t len,
						       uint32_t *code, char *why, size_t whylen)
{
	Pvmigrate__Ctl__PeerResponse *rsp = pvmigrate__ctl__peer_response__unpack(NULL, len, body);
	int rc;

	if (rsp && !reencodes(&rsp->base)) {
		pvmigrate__ctl__peer_response__free_unpacked(rsp, NULL);
		rsp = NULL;
	}
	*code = CTL_ERR_PROTOCOL;
	if (!rsp) {
		ctl_bad(why, whylen, "peer response: not a PeerResponse message");
		return NULL;
	}
	rc = check_version(rsp->has_protocol_major, rsp->protocol_major, rsp->has_protocol_minor,
			   rsp->protocol_minor, code, why, whylen);
	if (!rc) {
		*code = CTL_ERR_PROTOCOL;
		if (rsp->body_case == PVMIGRATE__CTL__PEER_RESPONSE__BODY_ACCEPT) {
			rc = check_guest(rsp->accept->guest, "peer accept: guest", why, whylen);
			if (!rc && rsp->accept->migration_id)
				rc = check_mig_id(rsp->accept->migration_id,
						  "peer accept: migration_id", why, whylen);
			if (!rc && rsp->accept->has_direct_token &&
			    rsp->accept->direct_token.len != CTL_DIRECT_TOKEN_LEN)
				rc = ctl_bad(why, whylen, "peer accept: direct_token: %zu bytes, not %u",
					     rsp->accept->direct_token.len, CTL_DIRECT_TOKEN_LEN);
		} else if (rsp->body_case == PVMIGRATE__CTL__PEER_RESPONSE__BODY_QUERY)
			rc = rsp->query->has_state && rsp->query->state >= CTL_QUERY_ABSENT &&
				     rsp->query->state <= CTL_QUERY_PENDING &&
				     opt_text(rsp->query->detail, CTL_MSG_MAX)
				     ? 0 : ctl_bad(why, whylen, "peer query result: bad state or detail");
		else if (rsp->body_case == PVMIGRATE__CTL__PEER_RESPONSE__BODY_ERROR)
			rc = rsp->error->has_code && ctl_printable(rsp->error->message, CTL_MSG_MAX)
				     ? 0 : ctl_bad(why, whylen, "peer error: no code or message");
		else
			rc = ctl_bad(why, whylen, "peer response: no answer in the message");
	}
	if (rc) {
		pvmigrate__ctl__peer_response__free_unpacked(rsp, NULL);
		return NULL;
	}
	return rsp;
}

void ctl_peer_response_free(Pvmigrate__Ctl__PeerResponse *rsp)
{
	if (rsp)
		pvmigrate__ctl__peer_response__free_unpacked(rsp, NULL);
}
