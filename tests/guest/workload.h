/* workload.h: the guest's deterministic workload, shared by the user task and the host-side reference */
#ifndef GUEST_WORKLOAD_H
#define GUEST_WORKLOAD_H

#include <stdint.h>

/*
 * The definition (README.md repeats it):
 *
 *   generator  splitmix64: state += 0x9e3779b97f4a7c15;
 *              z = state; z = (z ^ z >> 30) * 0xbf58476d1ce4e5b9;
 *              z = (z ^ z >> 27) * 0x94d049bb133111eb; return z ^ z >> 31.
 *              The state starts at the seed.
 *   buffer     W = mem / 8 little-endian 64-bit words, all zero at the start.
 *   step       a = next(); v = next(); i = a % W;
 *              buf[i] = rotl64(buf[i], 7) ^ v;
 *              h = (h ^ buf[i]) * 0x100000001b3          (h starts at 0xcbf29ce484222325)
 *   progress   the running h after K steps (the guest's "steps=K checksum=" lines)
 *   result     after N steps fold the whole buffer into h, word 0 first:
 *              for i in 0..W-1: h = (h ^ buf[i]) * 0x100000001b3
 *
 * h is FNV-1a 64 taken over 64-bit words instead of bytes: the running
 * part over the sequence of stored values, the final part over the buffer,
 * so the result depends on every step's order and on every word of memory.
 */
#define WL_FNV_OFFSET 0xcbf29ce484222325ull
#define WL_FNV_PRIME  0x100000001b3ull
#define WL_GOLDEN     0x9e3779b97f4a7c15ull

struct wl {
	uint64_t state; /* splitmix64 state */
	uint64_t h;	/* running checksum */
	uint64_t words; /* W */
	uint64_t *buf;
};

static inline uint64_t wl_next(struct wl *w)
{
	uint64_t z = (w->state += WL_GOLDEN);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static inline void wl_init(struct wl *w, uint64_t seed, uint64_t *buf, uint64_t mem_bytes)
{
	w->state = seed;
	w->h = WL_FNV_OFFSET;
	w->words = mem_bytes / 8;
	w->buf = buf;
}

static inline void wl_step(struct wl *w)
{
	uint64_t a = wl_next(w), v = wl_next(w);
	uint64_t i = a % w->words;
	uint64_t x = w->buf[i];
	x = ((x << 7) | (x >> 57)) ^ v;
	w->buf[i] = x;
	w->h = (w->h ^ x) * WL_FNV_PRIME;
}

static inline uint64_t wl_result(const struct wl *w)
{
	uint64_t h = w->h;
	for (uint64_t i = 0; i < w->words; i++)
		h = (h ^ w->buf[i]) * WL_FNV_PRIME;
	return h;
}

#endif
