/* stream_frames.c: the frame list of a NIC_HELD or NIC_LATE body: one builder for the writers, one checker and walker for the readers */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream_int.h"

/*
 * The body (pvmigrate-stream(5), NIC_HELD): u32 count, u32 0, then per
 * frame u32 length, u32 0, the frame, zeros up to a multiple of 8.  The
 * held frames at the freeze and the tail's late frames share it, so both
 * sides of both records go through here.
 */

void stream_frames_clear(struct stream_frames *f)
{
	f->len = 0;
	f->count = 0;
}

void stream_frames_free(struct stream_frames *f)
{
	free(f->buf);
	memset(f, 0, sizeof(*f));
}

int stream_frames_add(struct stream_frames *f, const void *frame, size_t len)
{
	size_t start = f->len ? f->len : STREAM_FRAMES_HDR_LEN, need;

	if (!len || len > UINT32_MAX || f->count == UINT32_MAX) {
		errno = EMSGSIZE; /* the layout has no room for it */
		return -1;
	}
	need = start + 8 + len + (size_t)st_pad(len);
	if (need > f->cap) {
		size_t cap = f->cap ? f->cap : 8192;
		uint8_t *nb;

		while (cap < need)
			cap *= 2;
		if (!(nb = realloc(f->buf, cap))) {
			errno = ENOMEM;
			return -1;
		}
		f->buf = nb;
		f->cap = cap;
	}
	/* the body's header stays zero until stream_frames_body fills its count */
	memset(f->buf + f->len, 0, need - f->len);
	st_put32(f->buf + start, (uint32_t)len);
	memcpy(f->buf + start + 8, frame, len);
	f->len = need;
	f->count++;
	return 0;
}

const uint8_t *stream_frames_body(struct stream_frames *f, size_t *len)
{
	if (!f->count)
		return NULL;
	st_put32(f->buf, f->count);
	*len = f->len;
	return f->buf;
}

/* Plain text into why: the caller names the record around it. */
static int frames_err(char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int frames_err(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (why && whylen) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

int stream_frames_check(const uint8_t *b, uint64_t len, uint32_t *count, char *why,
			size_t whylen)
{
	uint64_t off = STREAM_FRAMES_HDR_LEN, flen;
	uint32_t i;

	if (len < STREAM_FRAMES_HDR_LEN || st_get32(b + 4))
		return frames_err(why, whylen, "short body or reserved word not 0");
	*count = st_get32(b);
	for (i = 0; i < *count; i++) {
		if (len - off < 8 || st_get32(b + off + 4))
			return frames_err(why, whylen, "frame %u: bad or missing header", i);
		flen = st_get32(b + off);
		off += 8;
		if (!flen || flen > len - off)
			return frames_err(why, whylen, "frame %u: length %llu, %llu bytes left", i,
					  (unsigned long long)flen, (unsigned long long)(len - off));
		off += flen;
		if (st_pad(flen) > len - off)
			return frames_err(why, whylen, "frame %u: padding cut short", i);
		for (; flen & 7; flen++, off++)
			if (b[off])
				return frames_err(why, whylen, "frame %u: padding not zero", i);
	}
	if (off != len)
		return frames_err(why, whylen, "%llu bytes after %u frames",
				  (unsigned long long)(len - off), *count);
	return 0;
}

const uint8_t *stream_frames_next(const uint8_t *b, uint64_t *off, size_t *len)
{
	const uint8_t *f;

	if (*off < STREAM_FRAMES_HDR_LEN)
		*off = STREAM_FRAMES_HDR_LEN;
	*len = st_get32(b + *off);
	f = b + *off + 8;
	*off += 8 + *len + st_pad(*len);
	return f;
}
