/*
 * fuzz_chunked.c: libFuzzer harness for the chunked-body scanner.
 *
 * The input is fed three ways: in one call, in pieces whose sizes come from
 * a PRNG seeded with the input, and (for short inputs) one byte at a time.
 * All must give the same outcome: the same body length when the end is
 * found, an error on the same inputs, "need more" otherwise.  The outcome
 * must also match ref_scan(), a plain whole-buffer reading of the grammar
 * of RFC 9112 §7.1 with the same limits.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "worker/http.h"

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond))                                                   \
			abort();                                               \
	} while (0)

#define OUT_ERROR (-1) /* bad framing */
#define OUT_MORE  (-2) /* all bytes taken, end not found */

/* ---- the scanner under test ---- */

struct feeder {
	struct http_chunked c;
	size_t total;
	long out;
};

/* Feed one piece; returns false once the outcome is known. */
static bool feed(struct feeder *f, const uint8_t *p, size_t n)
{
	bool done = false;
	ssize_t r = http_chunked_feed(&f->c, (const char *)p, n, &done);

	if (r < 0) {
		f->out = OUT_ERROR;
		return false;
	}
	CHECK((size_t)r <= n);
	CHECK(done || (size_t)r == n);
	f->total += (size_t)r;
	if (done) {
		f->out = (long)f->total;
		return false;
	}
	return true;
}

/* split: 0 = one call, 1 = byte by byte, else PRNG seed for piece sizes */
static long scan_split(const uint8_t *p, size_t n, uint32_t split)
{
	struct feeder f = {.out = OUT_MORE};
	size_t i = 0;

	http_chunked_init(&f.c);
	while (i < n) {
		size_t piece = n - i;

		if (split == 1) {
			piece = 1;
		} else if (split > 1) {
			split = split * 1103515245u + 12345u;
			piece = 1 + (split >> 16) % 64;
			piece = piece < n - i ? piece : n - i;
		}
		if (!feed(&f, p + i, piece))
			return f.out;
		i += piece;
	}
	return f.out;
}

/* ---- reference reading ---- */

static int ref_hex(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool ref_vchar(uint8_t c) /* field-vchar, SP, HT, obs-text */
{
	return (c >= 0x20 && c != 0x7f) || c == '\t';
}

static bool ref_tchar(uint8_t c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	       (c >= 'A' && c <= 'Z') || (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* chunk-size [ BWS ";" ext ] CRLF; *size out.  Returns next index or OUT_* */
static long ref_size_line(const uint8_t *p, size_t n, size_t i, uint64_t *size)
{
	size_t start = i, nd = 0;

	*size = 0;
	for (; i < n && ref_hex(p[i]) >= 0; i++, nd++) {
		if (nd == 16)
			return OUT_ERROR;
		*size = *size * 16 + (uint64_t)ref_hex(p[i]);
	}
	if (i < n && nd == 0)
		return OUT_ERROR;
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	if (i < n && p[i] != '\r' && p[i] != ';')
		return OUT_ERROR;
	if (i < n && p[i] == '\r' && (p[i - 1] == ' ' || p[i - 1] == '\t'))
		return OUT_ERROR; /* BWS without an extension */
	if (i < n && p[i] == ';')
		for (; i < n && p[i] != '\r'; i++)
			if (!ref_vchar(p[i]) ||
			    i - start >= HTTP_MAX_CHUNK_LINE)
				return OUT_ERROR;
	if (i - start > HTTP_MAX_CHUNK_LINE)
		return OUT_ERROR;
	if (i >= n)
		return OUT_MORE;
	if (i + 1 >= n)
		return OUT_MORE;
	return p[i + 1] == '\n' ? (long)(i + 2) : OUT_ERROR;
}

/* One trailer field-line: token ":" value CRLF.  Next index or OUT_* */
static long ref_trailer_line(const uint8_t *p, size_t n, size_t i)
{
	size_t start = i;

	for (; i < n && ref_tchar(p[i]); i++)
		if (i - start >= HTTP_MAX_CHUNK_LINE)
			return OUT_ERROR;
	if (i < n && (i == start || p[i] != ':'))
		return OUT_ERROR;
	for (; i < n && p[i] != '\r'; i++)
		if ((i > start && !ref_vchar(p[i])) ||
		    i - start >= HTTP_MAX_CHUNK_LINE)
			return OUT_ERROR;
	if (i + 1 >= n)
		return OUT_MORE;
	return p[i + 1] == '\n' ? (long)(i + 2) : OUT_ERROR;
}

static long ref_scan(const uint8_t *p, size_t n)
{
	size_t i = 0;
	uint64_t size;
	long r;

	for (;;) {
		if ((r = ref_size_line(p, n, i, &size)) < 0)
			return r;
		i = (size_t)r;
		if (size == 0)
			break;
		if (size > n - i)
			return OUT_MORE;
		i += size;
		if (i < n && p[i] != '\r')
			return OUT_ERROR;
		if (i + 1 < n && p[i + 1] != '\n')
			return OUT_ERROR;
		if (i + 2 > n)
			return OUT_MORE;
		i += 2;
	}
	for (;;) { /* trailer section, then CRLF */
		if (i >= n)
			return OUT_MORE;
		if (p[i] == '\r')
			break;
		if ((r = ref_trailer_line(p, n, i)) < 0)
			return r;
		i = (size_t)r;
	}
	if (i + 1 >= n)
		return OUT_MORE;
	return p[i + 1] == '\n' ? (long)(i + 2) : OUT_ERROR;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t seed = 2166136261u;
	long whole, ref;

	for (size_t i = 0; i < size; i++)
		seed = (seed ^ data[i]) * 16777619u;
	whole = scan_split(data, size, 0);
	CHECK(whole == OUT_ERROR || whole == OUT_MORE ||
	      (whole > 0 && (size_t)whole <= size));
	CHECK(scan_split(data, size, seed | 2) == whole);
	if (size <= 1024)
		CHECK(scan_split(data, size, 1) == whole);
	ref = ref_scan(data, size);
	CHECK(ref == whole);
	return 0;
}
