/* stream.h: the migration stream: framed records over a byte stream, its writer, and its validating decoder */
#ifndef STREAM_H
#define STREAM_H

/*
 * pvmigrate-stream(5) is the reference.  In short: a stream is a sequence
 * of records, each
 *
 *	u32 type	bit 31 (STREAM_OPTIONAL): a reader that does not know
 *			the type skips it; otherwise it must refuse the stream
 *	u32 flags	reserved, 0
 *	u64 length	of the body, at most STREAM_MAX_RECORD
 *	body, then zero bytes up to the next multiple of 8
 *
 * all integers little-endian.  Order: STREAM_HEADER, any number of
 * PAGE_BATCH, one MACHINE_STATE, END; optional records anywhere after the
 * header and before END.  The decoder checks the header against the local
 * host before it hands out a single page.  A header that says the RAM is
 * shared (stream_info.shared) allows no PAGE_BATCH at all.
 *
 * Errors are strings "stream: <what>: <why>", the first failure wins.
 * Nothing here aborts, and no byte of input is trusted.
 */
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "stream.pb-c.h"
#include "vm_vcpu_state.h"

#define STREAM_VERSION 1u		/* StreamHeader.stream_version written and read */
#define STREAM_MAGIC "PVMIGRAT"		/* first 8 bytes of a STREAM_HEADER body */
#define STREAM_MAGIC_LEN 8
#define STREAM_PAGE_SIZE 4096u
#define STREAM_MAX_RECORD (64ull << 20) /* body bytes; the 16-byte header and padding extra */
#define STREAM_MAX_BATCH 4096u		/* pages per PAGE_BATCH (16 MiB of data) */
#define STREAM_MAX_VCPUS 256u		/* hard cap, whatever the host says */
#define STREAM_NAME_MAX 31		/* personality names: [a-z0-9_-]{1,31} */
#define STREAM_DIGEST_LEN 32		/* PatchState.digest: SHA-256 */

/* Record types.  Numbers are never reused; a changed layout is a new type. */
#define STREAM_OPTIONAL 0x80000000u
#define STREAM_REC_END 0u		/* empty body, last */
#define STREAM_REC_HEADER 1u		/* magic, then protobuf StreamHeader; first, once */
#define STREAM_REC_PAGE_BATCH 2u	/* u32 count, u32 0, count u64 gfns, count pages */
#define STREAM_REC_MACHINE_STATE 3u	/* protobuf MachineState; once, after the pages */
#define STREAM_REC_STATISTICS (STREAM_OPTIONAL | 4u) /* u64 words, see struct stream_stats */
/* Frames the NIC's host queue held at the freeze, oldest first: u32 count,
 * u32 0, then per frame u32 length, u32 0, the frame, zeros to 8 bytes.
 * Optional: a reader that skips it loses those frames, as a wire may. */
#define STREAM_REC_NIC_HELD (STREAM_OPTIONAL | 5u)
/*
 * The tail (pvmigrate-stream(5), "The tail"): only after END, and only
 * once the target's OK reached the source, a source whose guest's NIC
 * now has another connection on the target forwards the frames that
 * still reached its old one: NIC_LATE records (body as NIC_HELD, at
 * least one frame; optional, as frames a wire may lose), then one
 * NIC_LATE_END: u64 frames forwarded in the tail, u32 how it ended
 * (enum stream_late_how), u32 0.  Before END both are refused.
 */
#define STREAM_REC_NIC_LATE (STREAM_OPTIONAL | 6u)
#define STREAM_REC_NIC_LATE_END 7u

/* Name of a known record type ("PAGE_BATCH"), or NULL. */
const char *stream_rec_name(uint32_t type);

/* ---- the byte stream ---- */

/*
 * Both callbacks behave like read(2)/write(2): they may move fewer bytes
 * than asked, return 0 from read at end of input, and -1 on error (errno).
 * The stream layer loops.  Either may be NULL on a one-way stream.
 */
struct stream_io {
	void *ctx;
	ssize_t (*read)(void *ctx, void *buf, size_t len);
	ssize_t (*write)(void *ctx, const void *buf, size_t len);
};

/* A file descriptor (socket, pipe, file); EINTR is retried. */
void stream_io_fd(struct stream_io *io, int *fd);

/* A memory buffer: writes append (growing buf), reads consume from pos. */
struct stream_mem {
	uint8_t *buf;
	size_t len, cap, pos;
};
void stream_io_mem(struct stream_io *io, struct stream_mem *m);
void stream_mem_free(struct stream_mem *m);

/* ---- C forms of the header and the machine state ---- */

enum stream_cpu_word {
	STREAM_CPU_1_ECX, STREAM_CPU_1_EDX, STREAM_CPU_7_EBX, STREAM_CPU_7_ECX,
	STREAM_CPU_7_EDX, STREAM_CPU_X1_ECX, STREAM_CPU_X1_EDX, STREAM_CPU_WORDS
};

struct stream_cpu {
	char vendor[13];		 /* 12 characters and a NUL */
	uint32_t word[STREAM_CPU_WORDS]; /* enum stream_cpu_word */
};

/* This host's CPU, from CPUID.  Returns 0, or -1 where there is no CPUID. */
int stream_cpu_local(struct stream_cpu *cpu);

/* StreamHeader, checked. */
struct stream_info {
	uint32_t version;		/* STREAM_VERSION */
	char personality[STREAM_NAME_MAX + 1];
	uint32_t image_abi;
	uint32_t patch_table_version;
	struct stream_cpu cpu;
	uint64_t ram_size;		/* bytes, a multiple of STREAM_PAGE_SIZE */
	uint32_t nr_vcpus;
	uint32_t page_size;		/* STREAM_PAGE_SIZE */
	/* StreamHeader.shared_ram: set, no page follows; the RAM is the memory
	 * file passed with the stream (migrate_shared.c), this one by fstat. */
	struct stream_shared_ram {
		int present;
		uint64_t dev, ino, size;
	} shared;
};

struct stream_patch {
	char personality[STREAM_NAME_MAX + 1];
	uint32_t nr_sites;
	uint8_t digest[STREAM_DIGEST_LEN];
	uint64_t table_addr, table_size; /* size 0: not carried */
};

/*
 * MachineState.  On writing, vcpus/devices/patch are the caller's; on
 * decoding they point into the decoder's storage and live until the
 * machine callback returns.  devices is a packed DeviceSet exactly as
 * devstate_save() makes it and devstate_restore() takes it (NULL: none).
 */
struct stream_machine {
	const struct vm_vcpu_state *vcpus;
	unsigned nr_vcpus;
	const uint8_t *devices;
	size_t devices_len;
	const struct stream_patch *patch; /* NULL: none */
	/* decode side only: the message as unpacked, and the record body */
	const Pvmigrate__MachineState *msg;
	const uint8_t *raw;
	size_t raw_len;
};

/* STATISTICS: for people, not for restoring; readers may skip it. */
struct stream_stats {
	uint64_t rounds;		/* pre-copy rounds */
	uint64_t pages;			/* pages sent in all PAGE_BATCH records */
	uint64_t elapsed_ns;		/* from header to freeze */
};

/* ---- writing ---- */

/*
 * A writer keeps the order rules too: a call out of order fails and
 * writes nothing.  Functions return 0, or -1 with w->err set.
 */
struct stream_writer {
	const struct stream_io *io;
	int phase;			/* 0 new, 1 header, 2 machine state, 3 end */
	uint64_t ram_pages;
	uint32_t nr_vcpus;
	char personality[STREAM_NAME_MAX + 1];
	uint64_t bytes;			/* written so far */
	char err[256];
};

void stream_writer_init(struct stream_writer *w, const struct stream_io *io);
int stream_write_header(struct stream_writer *w, const struct stream_info *info);
/*
 * One PAGE_BATCH of `count` (1..STREAM_MAX_BATCH) pages: gfns strictly
 * increasing and inside guest RAM; page i is read at ram + gfns[i] * 4096.
 */
int stream_write_pages(struct stream_writer *w, const uint64_t *gfns, uint32_t count,
		       const uint8_t *ram);
int stream_write_machine_state(struct stream_writer *w, const struct stream_machine *m);
int stream_write_statistics(struct stream_writer *w, const struct stream_stats *st);
int stream_write_end(struct stream_writer *w);
/* Any record, unchecked but for the size limit (new optional types, tests). */
int stream_write_record(struct stream_writer *w, uint32_t type, const void *body, uint64_t len);

/* ---- reading records ---- */

struct stream_record {
	uint32_t type;
	uint64_t len;
	const uint8_t *body;		/* valid until the next read */
	uint64_t offset;		/* of the record header in the stream */
};

struct stream_reader {
	const struct stream_io *io;
	uint8_t *buf;
	size_t cap;
	uint64_t offset;		/* bytes consumed */
	char err[256];
};

void stream_reader_init(struct stream_reader *r, const struct stream_io *io);
void stream_reader_free(struct stream_reader *r);
/*
 * Read and frame-check one record: length within STREAM_MAX_RECORD, flags
 * zero, padding zero, nothing truncated.  The body buffer grows only as
 * bytes arrive, so a hostile length costs no more memory than the input.
 * Returns 1 with *rec filled, 0 at a clean end of input before any byte of
 * a record, -1 with r->err set.
 */
int stream_read_record(struct stream_reader *r, struct stream_record *rec);

/* ---- frame lists: the body of NIC_HELD and NIC_LATE ---- */

#define STREAM_FRAMES_HDR_LEN 8 /* u32 count, u32 0 */

/* A body being built; zeroed to start.  Empty until the first frame. */
struct stream_frames {
	uint8_t *buf;
	size_t len, cap;
	uint32_t count;
};
/* Append one frame (1..UINT32_MAX bytes).  -1 with errno: ENOMEM, or
 * EMSGSIZE for a frame the layout cannot hold; the list is unchanged. */
int stream_frames_add(struct stream_frames *f, const void *frame, size_t len);
/* The body with its count filled in, *len its length; NULL while empty. */
const uint8_t *stream_frames_body(struct stream_frames *f, size_t *len);
/* Empty it again, keeping the memory for the next body. */
void stream_frames_clear(struct stream_frames *f);
void stream_frames_free(struct stream_frames *f);

/*
 * Check a whole body before any frame of it is used: header, every frame's
 * header and length, zero padding, nothing after the last frame.  0 with
 * *count (which may be 0: a record wanting frames says so itself); -1 with
 * why, plain ("frame 2: padding not zero"): the caller names the record.
 */
int stream_frames_check(const uint8_t *body, uint64_t len, uint32_t *count, char *why,
			size_t whylen);
/* After a successful check: the next frame and its *len; *off starts at 0. */
const uint8_t *stream_frames_next(const uint8_t *body, uint64_t *off, size_t *len);

/* ---- the tail ---- */

/* NIC_LATE_END's u32: why the source stopped reading its old connection. */
enum stream_late_how {
	STREAM_LATE_EOF = 1,	 /* the far end closed it: nothing more can come */
	STREAM_LATE_BOUND = 2,	 /* the source's time bound passed (a tap has no end) */
	STREAM_LATE_NIC_ERROR = 3, /* reading it failed */
	STREAM_LATE_HOW_MAX = 3
};
struct stream_late_end {
	uint64_t frames;	/* NIC_LATE_END's count: frames in the tail's NIC_LATE records */
	uint32_t how;		/* enum stream_late_how; 0: the input ended with no tail at all */
};
/* "EOF", "bound", "NIC error", or "none" */
const char *stream_late_how_name(uint32_t how);

/*
 * Read the tail from `io`, right after END: each NIC_LATE frame goes to
 * frame() as soon as its record is read and checked (a -1 from it stops
 * with its reason).  Returns 0 at NIC_LATE_END, whose count must equal
 * the frames seen, with *end filled; 0 with end->how == 0 when the input
 * ends cleanly before any tail record (a source that sends none); -1
 * with why for anything else: a record that has no place in the tail, a
 * malformed body, input ending inside the tail.  Frames handed out before
 * a failure were intact.  Unknown optional records are skipped.
 */
int stream_decode_tail(const struct stream_io *io,
		       int (*frame)(void *ctx, const uint8_t *f, size_t len, char *why,
				    size_t whylen),
		       void *ctx, struct stream_late_end *end, char *why, size_t whylen);

/* ---- decoding a whole stream ---- */

/* What this host can run: the stream's header is checked against it. */
struct stream_host {
	struct stream_cpu cpu;
	const char *const *personalities; /* available here */
	unsigned nr_personalities;
	uint64_t max_ram;		/* bytes */
	uint32_t max_vcpus;
	uint32_t image_abi;		/* newest guest-image ABI run here (older ones too) */
	uint32_t patch_table_version;	/* newest .pvsites version read here */
};

/*
 * Whether a stream with this header may run here.  Returns 0, or -1 with
 * e.g. "stream: target lacks personality 'l4'" or "stream: CPU feature
 * avx2 (cpuid 7.ebx bit 5) missing on target" in why.
 */
int stream_check_host(const struct stream_info *info, const struct stream_host *host,
		      char *why, size_t whylen);

/*
 * The decoder hands out only checked data, in stream order.  A callback
 * returns 0, or -1 with a reason in why (which the decoder prefixes with
 * "stream: <RECORD>: "); that stops decoding.  Any callback may be NULL.
 * Page data and gfns point into the decoder's buffer: copy what you keep.
 */
struct stream_sink {
	void *ctx;
	/* after the compatibility check passed, before any page */
	int (*header)(void *ctx, const struct stream_info *info, char *why, size_t whylen);
	int (*pages)(void *ctx, const uint64_t *gfns, uint32_t count, const uint8_t *data,
		     char *why, size_t whylen);
	int (*machine)(void *ctx, const struct stream_machine *m, char *why, size_t whylen);
	/* a known optional record, body already framed (STATISTICS: 8-byte words) */
	int (*optional)(void *ctx, uint32_t type, const uint8_t *body, uint64_t len, char *why,
			size_t whylen);
};

/*
 * Read a whole stream from `io`, up to and including END, and nothing past
 * it.  Returns 0 when the stream was complete and every callback accepted
 * its part; -1 with the first problem in why.  Whatever the callbacks took
 * before a failure is theirs to throw away.
 */
int stream_decode(const struct stream_io *io, const struct stream_host *host,
		  const struct stream_sink *sink, char *why, size_t whylen);

#endif
