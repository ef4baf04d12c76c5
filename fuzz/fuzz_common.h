/*-------------------------------------------------------------------------
 *
 * fuzz_common.h
 *	  Helpers shared by the libFuzzer harnesses: the two-byte input header,
 *	  line slicing, and invariant checks that abort (libFuzzer then saves
 *	  the input as a crash artifact).
 *
 * Input header (every harness except the retry-hint ones):
 *
 *		byte 0, high nibble  mode: the HTTP status index for the provider
 *		                     harnesses (fuzz_status_table), the why-buffer
 *		                     size for fuzz_answer, unused for fuzz_mock
 *		bytes 0-1, low 12 bits  N = 1 + (value % 1000), so 1..1000
 *
 * gen_corpus.py writes the header as hdr(n, mode).
 *
 *-------------------------------------------------------------------------
 */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_HEADER_LEN 2

#define FUZZ_CHECK(cond, ...) \
	do { \
		if (!(cond)) \
		{ \
			fprintf(stderr, "\n*** invariant failed at %s:%d: %s\n*** ", \
					__FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__); \
			fputc('\n', stderr); \
			abort(); \
		} \
	} while (0)

/* Statuses a provider harness can pick with the high nibble of byte 0 */
static const int fuzz_status_table[16] = {
	200, 400, 401, 402, 403, 404, 408, 409,
	422, 429, 500, 502, 503, 504, 201, 302
};

static inline int
fuzz_mode(const uint8_t *data)
{
	return data[0] >> 4;
}

static inline int
fuzz_n(const uint8_t *data)
{
	return 1 + ((((int) data[0] << 8) | data[1]) & 0x0fff) % 1000;
}

/*
 * Copy bytes up to the next '\n' (or the end) into dst as a C string,
 * truncated to dstlen - 1 like the curl header callback does; returns the
 * position after the newline.
 */
static inline const uint8_t *
fuzz_take_line(const uint8_t *p, const uint8_t *end, char *dst, size_t dstlen)
{
	const uint8_t *nl = memchr(p, '\n', (size_t) (end - p));
	const uint8_t *stop = nl ? nl : end;
	size_t		len = (size_t) (stop - p);

	if (len >= dstlen)
		len = dstlen - 1;
	memcpy(dst, p, len);
	dst[len] = '\0';
	return nl ? nl + 1 : end;
}

/* Like fuzz_take_line, into a fresh exact-size malloc'd C string */
static inline const uint8_t *
fuzz_take_line_dup(const uint8_t *p, const uint8_t *end, char **dst)
{
	const uint8_t *nl = memchr(p, '\n', (size_t) (end - p));
	const uint8_t *stop = nl ? nl : end;
	size_t		len = (size_t) (stop - p);

	*dst = malloc(len + 1);
	memcpy(*dst, p, len);
	(*dst)[len] = '\0';
	return nl ? nl + 1 : end;
}

/* An exact-size malloc'd copy with NO terminating NUL: ASan sees over-reads */
static inline char *
fuzz_dup_exact(const uint8_t *p, size_t len)
{
	char	   *s = malloc(len);	/* malloc(0) is a valid, unreadable block */

	if (len)
		memcpy(s, p, len);
	return s;
}

/* An exact-size malloc'd C string (embedded NULs just end it early) */
static inline char *
fuzz_dup_cstring(const uint8_t *p, size_t len)
{
	char	   *s = malloc(len + 1);

	if (len)
		memcpy(s, p, len);
	s[len] = '\0';
	return s;
}

static inline bool
fuzz_is_cstring(const char *s, size_t cap)
{
	return memchr(s, '\0', cap) != NULL;
}

/* A wait in seconds from the retry-hint parsers: -1 (none) or >= 0 */
static inline bool
fuzz_valid_wait(double w)
{
	return w == -1.0 || w >= 0.0;	/* NaN fails both */
}

#endif							/* FUZZ_COMMON_H */
