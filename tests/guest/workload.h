/* workload.h: the guest's deterministic workload, shared by the user task and the host-side reference */
#ifndef GUEST_WORKLOAD_H
#define GUEST_WORKLOAD_H

#include <stdint.h>

/*
 * The definition (README.md repeats it).  The work is a fixed number of
 * independent streams, WL_STREAMS = 2, so the result is the same whether
 * one CPU runs them in turn or each CPU runs its own, in parallel.
 *
 *   generator  splitmix64: state += 0x9e3779b97f4a7c15;
 *              z = state; z = (z ^ z >> 30) * 0xbf58476d1ce4e5b9;
 *              z = (z ^ z >> 27) * 0x94d049bb133111eb; return z ^ z >> 31.
 *              Stream j has its own, starting at seed + j * 0xd1b54a32d192ed03.
 *   buffer     W = mem / 8 little-endian 64-bit words, all zero at the start,
 *              W >= WL_STREAMS.  Stream j owns the contiguous part of
 *              W_j = W / 2 (+1 for j < W % 2) words after the parts of the
 *              streams before it (stream 0 first).
 *   steps      global steps 1..N are dealt round-robin: step g belongs to
 *              stream (g - 1) % 2 as its local step (g - 1) / 2 + 1, so stream
 *              j does N / 2 (+1 for j < N % 2) steps.
 *   step       (of stream j, on its own generator, part and running h_j)
 *              a = next(); v = next(); i = a % W_j;
 *              part[i] = rotl64(part[i], 7) ^ v;
 *              h_j = (h_j ^ part[i]) * 0x100000001b3    (h_j starts at 0xcbf29ce484222325)
 *   progress   "steps=K checksum=C": C is h_j of the stream that owns global
 *              step K, right after that step (K = 0: the starting value)
 *   result     h = 0xcbf29ce484222325; fold h_0, h_1, then the whole buffer
 *              word 0 first, each by h = (h ^ x) * 0x100000001b3
 *
 *   fill       (optional, fill=SIZE; F = SIZE / 8 words, 0 by default) a second
 *              region, written once before the steps, word i = wl_fill_word(seed, i)
 *              = (seed ^ (i + 1) * 0x9e3779b97f4a7c15) | 1 (never zero, so no page
 *              of it is all zero); after the buffer the result folds those F
 *              words as read back from memory at the end, word 0 first.  F = 0
 *              leaves the result as above.  It gives a migration many written
 *              pages without changing the steps.
 *
 * h is FNV-1a 64 taken over 64-bit words instead of bytes: each h_j over its
 * stream's sequence of stored values, the final fold over the stream results
 * and the buffer, so the result depends on the order of every step within
 * its stream and on every word of memory.  Streams never share a word, so
 * running them concurrently cannot change any of it.
 */
#define WL_FNV_OFFSET	  0xcbf29ce484222325ull
#define WL_FNV_PRIME	  0x100000001b3ull
#define WL_GOLDEN	  0x9e3779b97f4a7c15ull
#define WL_STREAM_SPREAD  0xd1b54a32d192ed03ull /* odd: streams' generators never line up */
#define WL_STREAMS	  2u

/* One stream: its generator, its running checksum and its part of the buffer. */
struct wl {
	uint64_t state; /* splitmix64 state */
	uint64_t h;	/* running checksum h_j */
	uint64_t words; /* W_j */
	uint64_t *buf;	/* the stream's part */
};

static inline uint64_t wl_next(struct wl *w)
{
	uint64_t z = (w->state += WL_GOLDEN);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Steps stream j does out of n in all (the round-robin deal). */
static inline uint64_t wl_stream_steps(uint64_t n, unsigned j)
{
	return n / WL_STREAMS + (j < n % WL_STREAMS);
}

/* The global number of stream j's k-th step (k from 1). */
static inline uint64_t wl_global_step(unsigned j, uint64_t k)
{
	return (k - 1) * WL_STREAMS + j + 1;
}

/* Stream j of the workload over buf[0..words-1] (words >= WL_STREAMS). */
static inline void wl_init(struct wl *w, uint64_t seed, unsigned j, uint64_t *buf,
			   uint64_t words)
{
	uint64_t q = words / WL_STREAMS, r = words % WL_STREAMS;
	w->state = seed + j * WL_STREAM_SPREAD;
	w->h = WL_FNV_OFFSET;
	w->words = q + (j < r);
	w->buf = buf + j * q + (j < r ? j : r);
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

/* The final checksum from every stream's h_j (in stream order) and the whole buffer. */
static inline uint64_t wl_result(const uint64_t hs[WL_STREAMS], const uint64_t *buf,
				 uint64_t words)
{
	uint64_t h = WL_FNV_OFFSET;
	for (unsigned j = 0; j < WL_STREAMS; j++)
		h = (h ^ hs[j]) * WL_FNV_PRIME;
	for (uint64_t i = 0; i < words; i++)
		h = (h ^ buf[i]) * WL_FNV_PRIME;
	return h;
}

/* Word i of the fill region (never zero). */
static inline uint64_t wl_fill_word(uint64_t seed, uint64_t i)
{
	return (seed ^ (i + 1) * WL_GOLDEN) | 1;
}

/* The result h folded on with the fill region's words as they are now. */
static inline uint64_t wl_fold_fill(uint64_t h, const uint64_t *fill, uint64_t words)
{
	for (uint64_t i = 0; i < words; i++)
		h = (h ^ fill[i]) * WL_FNV_PRIME;
	return h;
}

#endif
