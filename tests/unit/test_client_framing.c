/*
 * test_client_framing.c -- libsnnclient writes Envelopes as varint-delimited
 * frames that proto/framing.h decodes back, reads frames however the bytes are
 * split, refuses oversized frames, and matches replies to request ids.
 *
 * Each test plays the server on the other end of a real Unix (or TCP) socket.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "framing.h"
#include "snnclient.h"

typedef struct pair {
    snnc *c;  /* the client under test */
    int srv;  /* the server's end of the connection */
    int lfd;
    char path[108];
} pair;

/* Listens on a fresh Unix socket, connects a client with max_frame, accepts. */
static void pair_open(pair *p, uint32_t max_frame)
{
    memset(p, 0, sizeof *p);
    snprintf(p->path, sizeof p->path, "/tmp/snnc-test-%ld.sock", (long)getpid());
    unlink(p->path);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, p->path);
    p->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(p->lfd >= 0);
    assert_int_equal(bind(p->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(p->lfd, 1), 0);
    p->c = snnc_new(max_frame);
    char addr[128];
    snprintf(addr, sizeof addr, "unix:%s", p->path);
    assert_int_equal(snnc_connect(p->c, addr), 0);
    p->srv = accept(p->lfd, NULL, NULL);
    assert_true(p->srv >= 0);
}

static void pair_close(pair *p)
{
    snnc_free(p->c);
    close(p->srv);
    close(p->lfd);
    unlink(p->path);
}

/* Packs env behind its varint length into buf; returns the frame size. */
static size_t frame_of(const Snnd__V1__Envelope *env, uint8_t *buf)
{
    size_t body = snnd__v1__envelope__get_packed_size(env);
    size_t k = snn_varint_put(buf, (uint32_t)body);
    snnd__v1__envelope__pack(env, buf + k);
    return k + body;
}

static void write_all(int fd, const uint8_t *b, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, b, n);
        assert_true(k > 0);
        b += k;
        n -= (size_t)k;
    }
}

/* Reads one frame from the server's end, feeding the framer one byte at a
 * time (the most split a stream can be), and unpacks it. */
static Snnd__V1__Envelope *server_read(int fd)
{
    snn_framer f;
    snn_framer_init(&f, 1 << 20);
    const uint8_t *frame;
    size_t len;
    snn_frame_status st;
    while ((st = snn_framer_next(&f, &frame, &len)) == SNN_FRAME_NEED_MORE) {
        uint8_t b;
        assert_int_equal(read(fd, &b, 1), 1);
        assert_int_equal(snn_framer_feed(&f, &b, 1), 0);
    }
    assert_int_equal(st, SNN_FRAME_OK);
    Snnd__V1__Envelope *env = snnd__v1__envelope__unpack(NULL, len, frame);
    assert_non_null(env);
    assert_int_equal(snn_framer_pending(&f), 0);
    snn_framer_free(&f);
    return env;
}

/* The varint length prefix is base-128, little-endian groups, as protobuf's. */
static void varint_bytes(void **u)
{
    (void)u;
    uint8_t b[5];
    assert_int_equal(snn_varint_put(b, 300), 2);
    assert_int_equal(b[0], 0xac);
    assert_int_equal(b[1], 0x02);
    assert_int_equal(snn_varint_put(b, 0xffffffffu), 5);
    uint32_t n;
    assert_int_equal(snn_varint_get(b, 5, &n), 5);
    assert_int_equal(n, 0xffffffffu);
    assert_int_equal(snn_varint_get(b, 3, &n), 0); /* needs more */
    const uint8_t bad[6] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x01};
    assert_int_equal(snn_varint_get(bad, 6, &n), -1);
}

/* BinnedCounts sent by the client decode to the same fields and floats, with
 * request ids 1, 2, 3 in order. */
static void sent_envelopes_decode_back(void **u)
{
    (void)u;
    pair p;
    pair_open(&p, 0);
    const float counts[6] = {0, 1, 2, 0.5f, -0.25f, 1e-7f};
    uint32_t id1 = 0, id2 = 0, id3 = 0;
    assert_int_equal(snnc_open_stream(p.c, "arm-1", "tinyrsnn-indy01-seed1",
                                      SNND__V1__INPUT_KIND__INPUT_BINNED, 4000, 1, &id1), 0);
    assert_int_equal(snnc_binned(p.c, "arm-1", 3, counts, 2, 12000, &id2), 0);
    assert_int_equal(snnc_flush(p.c, "arm-1", 0, &id3), 0);
    assert_int_equal(id1, 1);
    assert_int_equal(id2, 2);
    assert_int_equal(id3, 3);

    Snnd__V1__Envelope *e = server_read(p.srv);
    assert_int_equal(e->id, 1);
    assert_int_equal(e->msg_case, SNND__V1__ENVELOPE__MSG_OPEN_STREAM);
    assert_string_equal(e->open_stream->stream_id, "arm-1");
    assert_string_equal(e->open_stream->model, "tinyrsnn-indy01-seed1");
    assert_int_equal(e->open_stream->input_kind, SNND__V1__INPUT_KIND__INPUT_BINNED);
    assert_int_equal(e->open_stream->bin_width_us, 4000);
    assert_true(e->open_stream->subscribe);
    snnc_envelope_free(e);

    e = server_read(p.srv);
    assert_int_equal(e->id, 2);
    assert_int_equal(e->msg_case, SNND__V1__ENVELOPE__MSG_BINNED_COUNTS);
    assert_int_equal(e->binned_counts->n_channels, 3);
    assert_int_equal(e->binned_counts->n_counts, 6);
    assert_memory_equal(e->binned_counts->counts, counts, sizeof counts);
    assert_int_equal(e->binned_counts->t_us, 12000);
    snnc_envelope_free(e);

    e = server_read(p.srv);
    assert_int_equal(e->id, 3);
    assert_int_equal(e->msg_case, SNND__V1__ENVELOPE__MSG_FLUSH);
    snnc_envelope_free(e);
    pair_close(&p);
}

/* A frame that arrives in pieces is returned only once complete; two frames
 * in one write come out as two envelopes. */
static void split_and_coalesced_reads(void **u)
{
    (void)u;
    pair p;
    pair_open(&p, 0);
    float v[2] = {0.125f, -3.5f};
    Snnd__V1__Prediction pr = SNND__V1__PREDICTION__INIT;
    pr.stream_id = "s";
    pr.step = 41;
    pr.t_us = 168000;
    pr.n_values = 2;
    pr.values = v;
    pr.hidden_spikes = 7;
    Snnd__V1__Envelope env = SNND__V1__ENVELOPE__INIT;
    env.msg_case = SNND__V1__ENVELOPE__MSG_PREDICTION;
    env.prediction = &pr;
    uint8_t buf[256];
    size_t n = frame_of(&env, buf);

    Snnd__V1__Envelope *got = NULL;
    write_all(p.srv, buf, 1); /* only the length prefix's first byte */
    assert_int_equal(snnc_recv(p.c, 30, &got), -SNNC_ETIMEDOUT);
    assert_null(got);
    write_all(p.srv, buf + 1, n - 3); /* all but the last two bytes */
    assert_int_equal(snnc_recv(p.c, 30, &got), -SNNC_ETIMEDOUT);
    write_all(p.srv, buf + n - 2, 2);
    assert_int_equal(snnc_recv(p.c, 1000, &got), 0);
    assert_int_equal(got->msg_case, SNND__V1__ENVELOPE__MSG_PREDICTION);
    assert_int_equal(got->prediction->step, 41);
    assert_int_equal(got->prediction->t_us, 168000);
    assert_int_equal(got->prediction->hidden_spikes, 7);
    assert_memory_equal(got->prediction->values, v, sizeof v);
    snnc_envelope_free(got);

    uint8_t two[512];
    memcpy(two, buf, n);
    pr.step = 42;
    size_t n2 = frame_of(&env, two + n);
    write_all(p.srv, two, n + n2);
    assert_int_equal(snnc_recv(p.c, 1000, &got), 0);
    assert_int_equal(got->prediction->step, 41);
    snnc_envelope_free(got);
    assert_int_equal(snnc_recv(p.c, 0, &got), 0); /* already buffered */
    assert_int_equal(got->prediction->step, 42);
    snnc_envelope_free(got);
    assert_int_equal(snnc_recv(p.c, 0, &got), -SNNC_ETIMEDOUT);
    pair_close(&p);
}

/* A declared length over max_frame is refused before its body arrives. */
static void oversized_frame_is_refused(void **u)
{
    (void)u;
    pair p;
    pair_open(&p, 100);
    uint8_t hdr[5];
    size_t k = snn_varint_put(hdr, 1000);
    write_all(p.srv, hdr, k);
    Snnd__V1__Envelope *got = NULL;
    assert_int_equal(snnc_recv(p.c, 1000, &got), -SNNC_EPROTO);
    assert_null(got);
    assert_non_null(strstr(snnc_error(p.c), "frame of 1000 bytes exceeds the limit of 100 bytes"));
    pair_close(&p);
}

/* The client will not send a frame larger than its own limit either. */
static void oversized_send_is_refused(void **u)
{
    (void)u;
    pair p;
    pair_open(&p, 64);
    float big[100] = {1};
    uint32_t id = 99;
    assert_int_equal(snnc_binned(p.c, "s", 100, big, 1, 0, &id), -SNNC_EINVAL);
    assert_int_equal(id, 99); /* untouched on failure */
    assert_non_null(strstr(snnc_error(p.c), "exceeds the limit of 64 bytes"));
    pair_close(&p);
}

/* Garbage bytes and EOF mid-frame are errors, not hangs. */
static void bad_bytes_and_eof(void **u)
{
    (void)u;
    pair p;
    pair_open(&p, 0);
    const uint8_t garbage[] = {0x03, 0xff, 0xff, 0xff};
    write_all(p.srv, garbage, sizeof garbage);
    Snnd__V1__Envelope *got = NULL;
    assert_int_equal(snnc_recv(p.c, 1000, &got), -SNNC_EPROTO);
    assert_non_null(strstr(snnc_error(p.c), "undecodable Envelope of 3 bytes"));
    pair_close(&p);

    pair_open(&p, 0);
    const uint8_t part[] = {0x10, 0x08};
    write_all(p.srv, part, sizeof part);
    close(p.srv);
    p.srv = -1;
    assert_int_equal(snnc_recv(p.c, 1000, &got), -SNNC_ECLOSED);
    assert_non_null(strstr(snnc_error(p.c), "in the middle of a frame"));
    pair_close(&p);
}

static int pushes;
static void count_push(void *ctx, const Snnd__V1__Envelope *env)
{
    (void)ctx;
    assert_int_equal(env->msg_case, SNND__V1__ENVELOPE__MSG_PREDICTION);
    pushes++;
}

/* wait_reply passes pushed messages by and returns the reply with the
 * request's id; an Error reply becomes -SNNC_ESERVER with its text. */
static void replies_match_request_ids(void **u)
{
    (void)u;
    pair p;
    pair_open(&p, 0);
    uint32_t id1, id2;
    assert_int_equal(snnc_subscribe(p.c, "s", &id1), 0);
    assert_int_equal(snnc_stats(p.c, NULL, &id2), 0);
    Snnd__V1__Envelope *e = server_read(p.srv);
    assert_int_equal(e->msg_case, SNND__V1__ENVELOPE__MSG_SUBSCRIBE);
    snnc_envelope_free(e);
    e = server_read(p.srv);
    assert_int_equal(e->msg_case, SNND__V1__ENVELOPE__MSG_STATS_REQUEST);
    assert_string_equal(e->stats_request->stream_id, "");
    snnc_envelope_free(e);

    uint8_t buf[1024];
    size_t n = 0;
    Snnd__V1__Prediction pr = SNND__V1__PREDICTION__INIT;
    pr.stream_id = "s";
    Snnd__V1__Envelope push = SNND__V1__ENVELOPE__INIT;
    push.msg_case = SNND__V1__ENVELOPE__MSG_PREDICTION;
    push.prediction = &pr;
    n += frame_of(&push, buf + n);
    Snnd__V1__Error er = SNND__V1__ERROR__INIT;
    er.code = SNND__V1__ERROR_CODE__UNKNOWN_STREAM;
    er.message = "no stream 'zz'";
    er.request_id = id2;
    Snnd__V1__Envelope err = SNND__V1__ENVELOPE__INIT;
    err.id = id2;
    err.msg_case = SNND__V1__ENVELOPE__MSG_ERROR;
    err.error = &er;
    n += frame_of(&err, buf + n); /* the answer to the second request first */
    n += frame_of(&push, buf + n);
    Snnd__V1__Ack ack = SNND__V1__ACK__INIT;
    ack.request_id = id1;
    Snnd__V1__Envelope ae = SNND__V1__ENVELOPE__INIT;
    ae.id = id1;
    ae.msg_case = SNND__V1__ENVELOPE__MSG_ACK;
    ae.ack = &ack;
    n += frame_of(&ae, buf + n);
    write_all(p.srv, buf, n);

    Snnd__V1__Envelope *r = NULL;
    assert_int_equal(snnc_wait_reply(p.c, id2, 1000, &r, count_push, NULL), -SNNC_ESERVER);
    assert_int_equal(pushes, 1);
    assert_non_null(r);
    assert_int_equal(r->msg_case, SNND__V1__ENVELOPE__MSG_ERROR);
    snnc_envelope_free(r);
    assert_string_equal(snnc_error(p.c), "server: UNKNOWN_STREAM: no stream 'zz'");
    assert_int_equal(snnc_wait_reply(p.c, id1, 1000, &r, count_push, NULL), 0);
    assert_int_equal(pushes, 2);
    assert_int_equal(r->msg_case, SNND__V1__ENVELOPE__MSG_ACK);
    snnc_envelope_free(r);
    assert_int_equal(snnc_wait_reply(p.c, 77, 20, NULL, NULL, NULL), -SNNC_ETIMEDOUT);
    pair_close(&p);
}

/* Addresses: malformed ones are EINVAL, unreachable ones ECONNECT naming the
 * address; tcp:127.0.0.1:PORT reaches a listener; stream ids are checked. */
static void addresses_and_stream_ids(void **u)
{
    (void)u;
    snnc *c = snnc_new(0);
    assert_int_equal(snnc_connect(c, "bogus"), -SNNC_EINVAL);
    assert_int_equal(snnc_connect(c, "tcp:nocolon"), -SNNC_EINVAL);
    assert_int_equal(snnc_connect(c, "tcp:[::1:80"), -SNNC_EINVAL);
    assert_int_equal(snnc_connect(c, "unix:/nonexistent/snnd.sock"), -SNNC_ECONNECT);
    assert_non_null(strstr(snnc_error(c), "connect unix:/nonexistent/snnd.sock: No such file"));
    assert_int_equal(snnc_binned(c, "s", 1, NULL, 0, 0, NULL), -SNNC_EINVAL); /* not connected */

    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(lfd, 1), 0);
    socklen_t sl = sizeof sa;
    getsockname(lfd, (struct sockaddr *)&sa, &sl);
    char addr[64];
    snprintf(addr, sizeof addr, "tcp:127.0.0.1:%u", ntohs(sa.sin_port));
    assert_int_equal(snnc_connect(c, addr), 0);
    int srv = accept(lfd, NULL, NULL);
    assert_true(srv >= 0);
    assert_int_equal(snnc_close_stream(c, "bad!id", NULL), -SNNC_EINVAL);
    assert_non_null(strstr(snnc_error(c), "character '!'"));
    assert_int_equal(snnc_close_stream(c, "ok.id:1-2_3", NULL), 0);
    Snnd__V1__Envelope *e = server_read(srv);
    assert_int_equal(e->id, 1); /* the refused request used no id */
    assert_string_equal(e->close_stream->stream_id, "ok.id:1-2_3");
    snnc_envelope_free(e);
    close(srv);
    close(lfd);
    snnc_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(varint_bytes),
        cmocka_unit_test(sent_envelopes_decode_back),
        cmocka_unit_test(split_and_coalesced_reads),
        cmocka_unit_test(oversized_frame_is_refused),
        cmocka_unit_test(oversized_send_is_refused),
        cmocka_unit_test(bad_bytes_and_eof),
        cmocka_unit_test(replies_match_request_ids),
        cmocka_unit_test(addresses_and_stream_ids),
    };
    return cmocka_run_group_tests_name("client_framing", tests, NULL, NULL);
}
