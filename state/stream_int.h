/* stream_int.h: what stream.c and stream_decode.c share: little-endian access, error formatting, name rules */
#ifndef STREAM_INT_H
#define STREAM_INT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "stream.h"

#define STREAM_REC_HDR_LEN 16
#define STREAM_BATCH_HDR_LEN 8 /* u32 count, u32 reserved */

static inline uint32_t st_get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t st_get64(const uint8_t *p)
{
	return (uint64_t)st_get32(p) | (uint64_t)st_get32(p + 4) << 32;
}

static inline void st_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static inline void st_put64(uint8_t *p, uint64_t v)
{
	st_put32(p, (uint32_t)v);
	st_put32(p + 4, (uint32_t)(v >> 32));
}

static inline uint64_t st_pad(uint64_t len)
{
	return (8 - (len & 7)) & 7;
}

/* stream.c */
/* "stream: " + the formatted text into why (if whylen > 0). */
void st_err(char *why, size_t whylen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The record's name for messages: "PAGE_BATCH" or "record type 0x00000042". */
const char *st_what(uint32_t type, char *buf, size_t len);
/* A personality name: 1..STREAM_NAME_MAX of [a-z0-9_-]. */
int st_name_ok(const char *name);
/* Exactly 12 printable ASCII characters. */
int st_vendor_ok(const char *vendor);

#endif
