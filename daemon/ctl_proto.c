/* ctl_proto.c: control protocol frames (length prefix, packing), the rules of its text fields, and error answers */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_proto.h"

typedef Pvmigrate__Ctl__ControlResponse Rsp;

const char *const ctl_known_personalities[] = { "native", "kvm", "xen", "l4", NULL };

static const char *const err_names[] = {
	"none", "protocol", "version", "denied", "invalid", "not-found",
	"unavailable", "not-implemented", "failed", "busy",
};

const char *ctl_err_name(uint32_t code)
{
	return code >= 1 && code <= CTL_ERR_MAX ? err_names[code] : "unknown";
}

int ctl_personality_known(const char *name)
{
	unsigned i;

	for (i = 0; ctl_known_personalities[i]; i++)
		if (!strcmp(name, ctl_known_personalities[i]))
			return 1;
	return 0;
}

/* All checkers: 0 if fine, -1 with why (ctl_proto.h). */
int ctl_bad(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return -1;
}

/* ---- framing ---- */

int ctl_frame_peek(const uint8_t *buf, size_t len, uint32_t *body_len, char *why, size_t whylen)
{
	uint32_t n;

	if (len < CTL_FRAME_HDR)
		return 0;
	n = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 | (uint32_t)buf[2] << 8 | buf[3];
	if (n > CTL_MAX_FRAME)
		return ctl_bad(why, whylen, "frame: length %u over the limit of %u bytes", n,
			   CTL_MAX_FRAME);
	*body_len = n;
	return len - CTL_FRAME_HDR >= n;
}

uint8_t *ctl_frame_pack(const ProtobufCMessage *msg, size_t *len)
{
	size_t n = protobuf_c_message_get_packed_size(msg);
	uint8_t *f;

	if (n > CTL_MAX_FRAME || !(f = malloc(CTL_FRAME_HDR + n)))
		return NULL;
	f[0] = (uint8_t)(n >> 24);
	f[1] = (uint8_t)(n >> 16);
	f[2] = (uint8_t)(n >> 8);
	f[3] = (uint8_t)n;
	protobuf_c_message_pack(msg, f + CTL_FRAME_HDR);
	*len = CTL_FRAME_HDR + n;
	return f;
}

/* ---- field rules ---- */

int ctl_printable(const char *s, size_t max)
{
	size_t n;

	if (!s)
		return 0;
	for (n = 0; s[n]; n++)
		if ((unsigned char)s[n] < 0x20 || s[n] == 0x7f || n >= max)
			return 0;
	return n > 0;
}

int ctl_check_guest_name(const char *s)
{
	size_t n;

	if (!s || !s[0] || s[0] == '-' || s[0] == '.')
		return 0;
	for (n = 0; s[n]; n++)
		if (n >= CTL_NAME_MAX ||
		    !((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') ||
		      (s[n] >= '0' && s[n] <= '9') || s[n] == '_' || s[n] == '.' || s[n] == '-'))
			return 0;
	return 1;
}

int ctl_check_personality(const char *s)
{
	size_t n;

	if (!s || !s[0])
		return 0;
	for (n = 0; s[n]; n++)
		if (n >= CTL_NAME_MAX || !((s[n] >= 'a' && s[n] <= 'z') ||
					   (s[n] >= '0' && s[n] <= '9') || s[n] == '_' || s[n] == '-'))
			return 0;
	return 1;
}

int ctl_check_memory(uint64_t bytes)
{
	return bytes >= CTL_MIN_MEMORY && bytes <= CTL_MAX_MEMORY && bytes % CTL_MEMORY_ALIGN == 0;
}

int ctl_parse_dest(const char *s, char *host, size_t hostlen, unsigned *port)
{
	const char *colon, *hs, *he;
	size_t n;
	unsigned long p = CTL_DEFAULT_PORT;
	char *end;

	if (!s || !s[0] || strlen(s) > CTL_DEST_MAX)
		return 0;
	if (s[0] == '[') { /* [v6]:port or [v6] */
		he = strchr(s, ']');
		if (!he)
			return 0;
		hs = s + 1;
		colon = he[1] == ':' ? he + 1 : NULL;
		if (he[1] && !colon)
			return 0;
		for (n = 0; hs + n < he; n++)
			if (!((hs[n] >= '0' && hs[n] <= '9') || (hs[n] >= 'a' && hs[n] <= 'f') ||
			      (hs[n] >= 'A' && hs[n] <= 'F') || hs[n] == ':' || hs[n] == '.'))
				return 0;
	} else {
		hs = s;
		colon = strchr(s, ':');
		he = colon ? colon : s + strlen(s);
		for (n = 0; hs + n < he; n++)
			if (!((hs[n] >= 'a' && hs[n] <= 'z') || (hs[n] >= 'A' && hs[n] <= 'Z') ||
			      (hs[n] >= '0' && hs[n] <= '9') || hs[n] == '.' || hs[n] == '-'))
				return 0;
	}
	n = (size_t)(he - hs);
	if (n == 0 || n > 253 || n >= hostlen)
		return 0;
	if (colon) {
		if (colon[1] < '0' || colon[1] > '9')
			return 0;
		p = strtoul(colon + 1, &end, 10);
		if (*end || p == 0 || p > 65535)
			return 0;
	}
	memcpy(host, hs, n);
	host[n] = '\0';
	*port = (unsigned)p;
	return 1;
}

int ctl_check_net(const char *s)
{
	size_t n;

	if (!s || !s[0])
		return 1;
	if (!strncmp(s, "socket:/", 8))
		return ctl_printable(s + 7, 108); /* sun_path */
	if (strncmp(s, "tap:", 4))
		return 0;
	for (n = 4; s[n]; n++)
		if (n - 4 >= 15 || !((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') ||
				     (s[n] >= '0' && s[n] <= '9') || s[n] == '_' || s[n] == '.' ||
				     s[n] == '-'))
			return 0;
	return n > 4;
}

/* ---- responses ---- */

uint8_t *ctl_error_frame(uint64_t id, uint32_t code, const char *msg, size_t *len)
{
	Rsp rsp = PVMIGRATE__CTL__CONTROL_RESPONSE__INIT;
	Pvmigrate__Ctl__Error err = PVMIGRATE__CTL__ERROR__INIT;
	char text[CTL_MSG_MAX];
	size_t i;

	/* the message goes to a terminal: no control characters, bounded */
	snprintf(text, sizeof text, "%s", msg && msg[0] ? msg : "error");
	for (i = 0; text[i]; i++)
		if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f)
			text[i] = '?';
	rsp.has_protocol_major = rsp.has_protocol_minor = rsp.has_id = 1;
	rsp.protocol_major = CTL_PROTO_MAJOR;
	rsp.protocol_minor = CTL_PROTO_MINOR;
	rsp.id = id;
	err.has_code = 1;
	err.code = code;
	err.message = text;
	rsp.body_case = PVMIGRATE__CTL__CONTROL_RESPONSE__BODY_ERROR;
	rsp.error = &err;
	return ctl_frame_pack(&rsp.base, len);
}
