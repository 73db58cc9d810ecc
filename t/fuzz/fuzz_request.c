/*
 * fuzz_request.c: libFuzzer harness for http_head_end + http_parse_request.
 *
 * Checks, beyond "no crash, no UB":
 *  - http_head_end fed in growing pieces (steps from the input) agrees with
 *    one call over the whole input;
 *  - parsing the head alone and parsing the head plus what follows give
 *    the same answer (the parser must stop at the blank line);
 *  - an accepted head's slices stay inside it and its derived fields are
 *    consistent.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "t/fuzz/fuzz_msg.h"
#include "worker/http.h"

#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond))                                                   \
			abort();                                               \
	} while (0)

static void check_slice(struct http_slice s, size_t limit)
{
	CHECK((size_t)s.off + s.len <= limit);
}

/* head_end in pieces of 1..8 bytes must match head_end in one go */
static size_t head_end_pieces(const char *buf, size_t len, size_t step)
{
	size_t scanned = 0, got = 0;

	for (size_t k = 0; k < len && got == 0; k += step) {
		size_t upto = k + step < len ? k + step : len;

		got = http_head_end(buf, upto, &scanned);
		CHECK(got <= upto);
		CHECK(got != 0 || scanned <= upto);
	}
	return got;
}

static void check_request(const char *buf, const struct http_msg *m, size_t len)
{
	CHECK(m->head_len > 0 && m->head_len <= len);
	CHECK(memcmp(buf + m->head_len - 4, "\r\n\r\n", 4) == 0);
	CHECK(m->nheaders <= HTTP_MAX_HEADERS);
	CHECK(m->host_idx >= -1 && m->host_idx < (int)m->nheaders);
	CHECK(m->version == HTTP_10 || m->version == HTTP_11);
	CHECK(m->version == HTTP_10 || m->host_idx >= 0);
	check_slice(m->method, m->head_len);
	check_slice(m->target, m->head_len);
	check_slice(m->path, m->head_len);
	check_slice(m->authority, m->head_len);
	CHECK(m->method.len > 0 && m->target.len > 0 && m->path.len > 0);
	CHECK(buf[m->path.off] == '/' || buf[m->path.off] == '*' ||
	      (m->path_needs_slash && buf[m->path.off] == '?'));
	CHECK(m->body != HTTP_BODY_CLOSE);
	CHECK(m->body == HTTP_BODY_LENGTH || m->content_length == 0);
	CHECK(m->content_length <= (uint64_t)1 << 62);
	CHECK(m->body != HTTP_BODY_CHUNKED || m->version == HTTP_11);
	CHECK(!m->has_upgrade || m->version == HTTP_11);
	for (unsigned i = 0; i < m->nheaders; i++) {
		check_slice(m->headers[i].name, m->head_len);
		check_slice(m->headers[i].value, m->head_len);
		CHECK(m->headers[i].name.len > 0);
		(void)http_is_hop_by_hop(buf, m, i);
	}
	CHECK(!http_is_hop_by_hop(buf, m, m->nheaders));
	if (m->host_idx >= 0)
		CHECK(http_find_header(buf, m, "host") == m->host_idx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data;
	static struct http_msg one, all;
	size_t scanned = 0, head;
	enum http_err e1, e2;

	head = http_head_end(buf, size, &scanned);
	CHECK(head <= size);
	CHECK(head_end_pieces(buf, size, size ? 1 + data[size - 1] % 8 : 1) ==
	      head);
	(void)http_head_too_large(buf, size);

	e2 = http_parse_request(buf, size, &all);
	if (head == 0) {
		CHECK(e2 != HTTP_OK);
		return 0;
	}
	e1 = http_parse_request(buf, head, &one);
	CHECK(e1 == e2);
	if (e1 != HTTP_OK)
		return 0;
	CHECK(one.head_len == head && all.head_len == head);
	CHECK(fuzz_msg_same(&one, &all));
	check_request(buf, &one, head);
	return 0;
}
