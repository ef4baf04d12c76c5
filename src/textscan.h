/*-------------------------------------------------------------------------
 *
 * textscan.h
 *	  How far a text runs before its first byte that needs escaping.
 *
 * Every byte of every persona is escaped twice on its way out: once for
 * the prompt (prompt.c) and once for the JSON body (request_json.c).
 * Nearly all of those bytes pass unchanged, so both ask this one question
 * and copy the clean run whole.  The "special" bytes are the control
 * characters (below 0x20), DEL, and four bytes the caller names (repeat one
 * to name fewer).  With SSE2 (every x86-64) sixteen bytes are tested at a
 * time, the last sixteen overlapping; elsewhere, and in texts shorter than
 * sixteen bytes, one.  Pure C: the JSON side is shared with the fuzzers.
 *
 *-------------------------------------------------------------------------
 */
#ifndef CTR_TEXTSCAN_H
#define CTR_TEXTSCAN_H

#include <stddef.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

static inline int
textscan_special(unsigned char ch, char a, char b, char c, char d)
{
	return ch < 0x20 || ch == 0x7f ||
		ch == (unsigned char) a || ch == (unsigned char) b ||
		ch == (unsigned char) c || ch == (unsigned char) d;
}

/* The number of leading bytes of s[0..len) that are not special */
static inline size_t
textscan_plain(const char *s, size_t len, char a, char b, char c, char d)
{
	size_t		i = 0;

#if defined(__SSE2__)
	const __m128i below = _mm_set1_epi8(0x1f);
	const __m128i del = _mm_set1_epi8(0x7f);
	const __m128i va = _mm_set1_epi8(a);
	const __m128i vb = _mm_set1_epi8(b);
	const __m128i vc = _mm_set1_epi8(c);
	const __m128i vd = _mm_set1_epi8(d);

	for (;;)
	{
		size_t		at;
		__m128i		v;
		__m128i		m;
		unsigned int bits;

		if (len < 16 || i >= len)
			break;
		/* the last block overlaps bytes already found plain: no mask needed */
		at = (i + 16 <= len) ? i : len - 16;
		v = _mm_loadu_si128((const __m128i *) (s + at));
		/* unsigned v <= 0x1f exactly when min(v, 0x1f) == v */
		m = _mm_cmpeq_epi8(_mm_min_epu8(v, below), v);
		m = _mm_or_si128(m, _mm_cmpeq_epi8(v, del));
		m = _mm_or_si128(m, _mm_cmpeq_epi8(v, va));
		m = _mm_or_si128(m, _mm_cmpeq_epi8(v, vb));
		m = _mm_or_si128(m, _mm_cmpeq_epi8(v, vc));
		m = _mm_or_si128(m, _mm_cmpeq_epi8(v, vd));
		bits = (unsigned int) _mm_movemask_epi8(m);
		if (bits != 0)
			return at + (size_t) __builtin_ctz(bits);
		if (at != i)
			return len;
		i += 16;
	}
#endif
	for (; i < len; i++)
		if (textscan_special((unsigned char) s[i], a, b, c, d))
			break;
	return i;
}

#endif							/* CTR_TEXTSCAN_H */
