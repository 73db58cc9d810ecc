/*
 * fuzz_response.c: libFuzzer harness for http_parse_response.
 *
 * The first input byte picks is_head_request; the rest is the response.
 * Checks that the head alone and the head plus body parse alike, that
 * slices stay inside the head and that the body framing is consistent.
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

static void check_response(const char *buf, const struct http_msg *m,
			   bool is_head)
{
	CHECK(m->head_len >= 16);
	CHECK(memcmp(buf + m->head_len - 4, "\r\n\r\n", 4) == 0);
	CHECK(m->status >= 100 && m->status <= 599);
	CHECK(m->version == HTTP_10 || m->version == HTTP_11);
	CHECK(m->nheaders <= HTTP_MAX_HEADERS);
	check_slice(m->reason, m->head_len);
	CHECK(m->body == HTTP_BODY_LENGTH || m->content_length == 0);
	CHECK(m->content_length <= (uint64_t)1 << 62);
	if (is_head || m->status < 200 || m->status == 204 || m->status == 304)
		CHECK(m->body == HTTP_BODY_NONE);
	CHECK(m->body != HTTP_BODY_CLOSE || !m->is_keepalive);
	CHECK(m->body != HTTP_BODY_CHUNKED || m->version == HTTP_11);
	for (unsigned i = 0; i <= m->nheaders; i++) {
		if (i < m->nheaders) {
			check_slice(m->headers[i].name, m->head_len);
			check_slice(m->headers[i].value, m->head_len);
		}
		(void)http_is_hop_by_hop(buf, m, i);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct http_msg one, all;
	const char *buf;
	size_t scanned = 0, head;
	bool is_head;
	enum http_err e1, e2;

	if (size < 1)
		return 0;
	is_head = data[0] & 1;
	buf = (const char *)data + 1;
	size--;

	head = http_head_end(buf, size, &scanned);
	e2 = http_parse_response(buf, size, is_head, &all);
	CHECK(e2 == HTTP_OK || e2 == HTTP_ERR_BAD_GATEWAY);
	if (head == 0) {
		CHECK(e2 != HTTP_OK);
		return 0;
	}
	e1 = http_parse_response(buf, head, is_head, &one);
	CHECK(e1 == e2);
	if (e1 != HTTP_OK)
		return 0;
	CHECK(one.head_len == head);
	CHECK(fuzz_msg_same(&one, &all));
	check_response(buf, &one, is_head);
	return 0;
}
