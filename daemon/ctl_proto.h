/* ctl_proto.h: the control protocol's framing, encoding and validation (ctl_proto.c, ctl_check.c), shared by pvmigrated, pvmigrate and the fuzzer */
#ifndef CTL_PROTO_H
#define CTL_PROTO_H

/*
 * A frame is a u32 big-endian body length (at most CTL_MAX_FRAME) and a
 * protobuf message of proto/control.proto.  Everything here is plain C
 * over byte buffers (no sockets, no libevent), so that the daemon, the
 * client and fuzz_control.c run the very same checks.  Every decoded
 * message is validated field by field before anybody acts on it: a
 * request that passes ctl_request_check() has every string within its
 * limits and of its character set, every number in range, and exactly
 * the fields its kind needs.
 *
 * Errors are "<what>: <why>" strings; nothing here aborts or trusts a byte.
 */
#include <stddef.h>
#include <stdint.h>

#include "control.pb-c.h"

#define CTL_PROTO_MAJOR 1u
/* 1: Migrate.runtime (in-place kvm upgrades), MigrateResult.personality
 * 2: PeerMigrate.net (a guest with a NIC moves between daemons)
 * 3: GuestInfo.net (status and list show the guest's NIC)
 * 4: the commit across daemons: PeerMigrate.migration_id, PeerAccept's
 *    echo of it, PeerQuery / PeerQueryResult (pvmigrated(8))
 * 5: the direct data path: PeerMigrate.direct, PeerAccept.direct_token,
 *    MigrateResult.data_path */
#define CTL_PROTO_MINOR 5u
/* The oldest target minor that takes a guest with a NIC (PeerMigrate.net). */
#define CTL_PROTO_MINOR_NET 2u
/* The oldest target minor whose receiver takes part in the commit (READY,
 * GO) and answers PeerQuery: an older one cannot take a guest from us. */
#define CTL_PROTO_MINOR_COMMIT 4u
/* The oldest target minor that knows the direct data path (PeerMigrate.direct). */
#define CTL_PROTO_MINOR_DIRECT 5u
#define CTL_DIRECT_TOKEN_LEN 32u	  /* PeerAccept.direct_token bytes */
#define CTL_MIG_ID_LEN 32u		  /* PeerMigrate.migration_id: lowercase hex */
enum ctl_query_state { CTL_QUERY_ABSENT = 1, CTL_QUERY_RUNS = 2, CTL_QUERY_PENDING = 3 };
#define CTL_FRAME_HDR 4u
#define CTL_MAX_FRAME (1u << 20)	  /* body bytes */
#define CTL_NAME_MAX 31			  /* guest and personality names */
#define CTL_PATH_MAX 4095		  /* image path */
#define CTL_MAX_ARGS 64
#define CTL_ARGS_MAX 4096		  /* all guest words, separators included */
#define CTL_NET_MAX 120
#define CTL_DEST_MAX 270		  /* 253-character host name, ':', port */
#define CTL_MSG_MAX 1024		  /* Error/Ok messages, detail */
#define CTL_CONSOLE_CHUNK (64u << 10)	  /* ConsoleData.data, PeerMigrate.console */
#define CTL_MAX_VCPUS 16u
#define CTL_MIN_MEMORY (2ull << 20)
#define CTL_MAX_MEMORY (3ull << 30)
#define CTL_MEMORY_ALIGN (2ull << 20)
#define CTL_DEFAULT_PORT 7480u		  /* the peer listener's TCP port */
#define CTL_MAX_GUESTS 4096u		  /* entries in one GuestList */

/* Error.code.  Numbers are never reused. */
enum ctl_err {
	CTL_ERR_PROTOCOL = 1,	     /* malformed frame or message */
	CTL_ERR_VERSION = 2,	     /* another protocol major version */
	CTL_ERR_DENIED = 3,	     /* this peer may not ask */
	CTL_ERR_INVALID = 4,	     /* a field out of range or missing */
	CTL_ERR_NOT_FOUND = 5,	     /* no such guest */
	CTL_ERR_UNAVAILABLE = 6,     /* the hypervisor does not exist on this host */
	CTL_ERR_NOT_IMPLEMENTED = 7, /* a real request this build cannot do yet */
	CTL_ERR_FAILED = 8,	     /* the action was tried and failed */
	CTL_ERR_BUSY = 9,	     /* the guest or the connection is busy */
	CTL_ERR_MAX = 9
};

/* "protocol", "version", ... for people and JSON; "unknown" beyond. */
const char *ctl_err_name(uint32_t code);

/* Personalities: every one there is, and what the daemon can run. */
extern const char *const ctl_known_personalities[]; /* NULL-terminated */
int ctl_personality_known(const char *name);

/* ---- framing ---- */

/*
 * Look at the start of buf[0..len): 1 when a whole frame is there (its
 * body is buf + CTL_FRAME_HDR, *body_len bytes), 0 when more bytes are
 * needed, -1 with why when the announced length is over CTL_MAX_FRAME.
 */
int ctl_frame_peek(const uint8_t *buf, size_t len, uint32_t *body_len, char *why, size_t whylen);

/* Pack msg behind a frame header into a new buffer (free it); NULL if too big. */
uint8_t *ctl_frame_pack(const ProtobufCMessage *msg, size_t *len);

/* ---- decoding and checking ---- */

/*
 * Unpack a body and check it.  NULL with *code (enum ctl_err) and why on
 * any problem; otherwise free the message with the matching _free.  A
 * message of another major version is refused with CTL_ERR_VERSION after
 * the unpack: the version fields are read, nothing else is looked at.
 */
Pvmigrate__Ctl__ControlRequest *ctl_request_decode(const uint8_t *body, size_t len, uint32_t *code,
						   char *why, size_t whylen);
void ctl_request_free(Pvmigrate__Ctl__ControlRequest *req);
Pvmigrate__Ctl__ControlResponse *ctl_response_decode(const uint8_t *body, size_t len,
						     uint32_t *code, char *why, size_t whylen);
void ctl_response_free(Pvmigrate__Ctl__ControlResponse *rsp);
Pvmigrate__Ctl__PeerRequest *ctl_peer_request_decode(const uint8_t *body, size_t len,
						     uint32_t *code, char *why, size_t whylen);
void ctl_peer_request_free(Pvmigrate__Ctl__PeerRequest *req);
Pvmigrate__Ctl__PeerResponse *ctl_peer_response_decode(const uint8_t *body, size_t len,
						       uint32_t *code, char *why, size_t whylen);
void ctl_peer_response_free(Pvmigrate__Ctl__PeerResponse *rsp);

/* The checks the decoders run, for messages built in memory (tests). */
int ctl_request_check(const Pvmigrate__Ctl__ControlRequest *req, uint32_t *code, char *why,
		      size_t whylen);
int ctl_response_check(const Pvmigrate__Ctl__ControlResponse *rsp, char *why, size_t whylen);

/* ---- field rules, also used by the client before it sends ---- */

/* 1..max-1 bytes, no control characters (a name in a log line or on a
 * terminal must not be able to move the cursor); bytes >= 0x80 pass. */
int ctl_printable(const char *s, size_t max);
int ctl_check_guest_name(const char *s);	/* [A-Za-z0-9_.-]{1,31}, no leading '-' or '.' */
int ctl_check_personality(const char *s);	/* [a-z0-9_-]{1,31} */
int ctl_check_memory(uint64_t bytes);
/* "HOST[:PORT]" or "[V6]:PORT": host and port split into the buffers. */
int ctl_parse_dest(const char *s, char *host, size_t hostlen, unsigned *port);
int ctl_check_net(const char *s);		/* "", socket:/PATH, tap:IFNAME */

/* ---- building responses ---- */

/* An Error response as a whole frame (free it); NULL when out of memory. */
uint8_t *ctl_error_frame(uint64_t id, uint32_t code, const char *msg, size_t *len);

/* Format a reason into why (whylen bytes) and return -1: the checkers' one way to fail. */
int ctl_bad(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
