/*
 * test_wav.c -- the RIFF/WAVE reader (wav.h) on files built byte by byte, and the
 * soxr resampler (resample.h) that brings them to 16 kHz.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "resample.h"
#include "testutil.h"
#include "wav.h"

static size_t put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
    return 4;
}

static size_t put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8);
    return 2;
}

/* Builds a WAVE file: fmt (format, channels, rate, bits), an optional odd-sized LIST chunk,
 * then data of nbytes. Returns its length. */
static size_t make_wav(uint8_t *b, uint16_t fmt, uint16_t ch, uint32_t rate, uint16_t bits,
                       const void *data, uint32_t nbytes, int with_list)
{
    size_t k = 0;
    memcpy(b, "RIFF", 4); k += 4;
    k += 4; /* size later */
    memcpy(b + k, "WAVE", 4); k += 4;
    memcpy(b + k, "fmt ", 4); k += 4;
    k += put32(b + k, 16);
    k += put16(b + k, fmt);
    k += put16(b + k, ch);
    k += put32(b + k, rate);
    k += put32(b + k, rate * ch * bits / 8);
    k += put16(b + k, (uint16_t)(ch * bits / 8));
    k += put16(b + k, bits);
    if (with_list) {
        memcpy(b + k, "LIST", 4); k += 4;
        k += put32(b + k, 3);
        memcpy(b + k, "abc\0", 4); k += 4; /* 3 bytes + pad byte */
    }
    memcpy(b + k, "data", 4); k += 4;
    k += put32(b + k, nbytes);
    memcpy(b + k, data, nbytes); k += nbytes;
    put32(b + 4, (uint32_t)(k - 8));
    return k;
}

/* Parses b[0..n) expecting success; returns the samples in w (caller frees). */
static void parse_ok(const uint8_t *b, size_t n, snn_wav *w)
{
    snn_err e = {{0}};
    int rc = snn_wav_parse(b, n, "k.wav", &snn_test_allocator, w, &e);
    if (rc != 0)
        fail_msg("%s", e.msg);
}

/* s16 mono: samples / 32768, after skipping an odd-sized LIST chunk. */
static void test_s16_mono(void **st)
{
    (void)st;
    uint8_t b[256];
    const int16_t s[4] = {0, 16384, -32768, 32767};
    size_t n = make_wav(b, 1, 1, 16000, 16, s, sizeof s, 1);
    snn_wav w;
    snn_err e = {{0}};
    assert_int_equal(snn_wav_parse(b, n, "a.wav", &snn_test_allocator, &w, &e), 0);
    assert_int_equal(w.sample_rate, 16000);
    assert_int_equal(w.n, 4);
    assert_float_equal(w.x[0], 0.0f, 0);
    assert_float_equal(w.x[1], 0.5f, 0);
    assert_float_equal(w.x[2], -1.0f, 0);
    assert_float_equal(w.x[3], 32767.0f / 32768.0f, 0);
    snn_wav_free(&w);
}

/* float32 mono is taken as is. */
static void test_f32_mono(void **st)
{
    (void)st;
    uint8_t b[256];
    const float s[3] = {0.25f, -0.75f, 1.0f};
    size_t n = make_wav(b, 3, 1, 48000, 32, s, sizeof s, 0);
    snn_wav w;
    snn_err e = {{0}};
    assert_int_equal(snn_wav_parse(b, n, "f.wav", &snn_test_allocator, &w, &e), 0);
    assert_int_equal(w.sample_rate, 48000);
    assert_int_equal(w.n, 3);
    assert_memory_equal(w.x, s, sizeof s);
    snn_wav_free(&w);
}

/* A float sample that is NaN, infinite or (64-bit) beyond float's range is refused, naming the
 * first such sample, and nothing is leaked. */
static void test_non_finite(void **st)
{
    (void)st;
    uint8_t b[256];
    snn_wav w;
    snn_err e = {{0}};
    const float nan4[4] = {0.1f, 0.2f, NAN, 0.3f};
    size_t n = make_wav(b, 3, 1, 16000, 32, nan4, sizeof nan4, 0);
    assert_int_equal(snn_wav_parse(b, n, "n.wav", &snn_test_allocator, &w, &e), -SNN_EFORMAT);
    assert_non_null(strstr(e.msg, "n.wav: sample 2 (at 0.000125 s) is not a finite float"));
    const float inf2[2] = {INFINITY, 0.0f};
    n = make_wav(b, 3, 1, 16000, 32, inf2, sizeof inf2, 0);
    assert_int_equal(snn_wav_parse(b, n, "i.wav", &snn_test_allocator, &w, &e), -SNN_EFORMAT);
    assert_non_null(strstr(e.msg, "i.wav: sample 0 "));
    const double big[3] = {0.5, -0.5, 1e300};
    n = make_wav(b, 3, 1, 8000, 64, big, sizeof big, 0);
    assert_int_equal(snn_wav_parse(b, n, "d.wav", &snn_test_allocator, &w, &e), -SNN_EFORMAT);
    assert_non_null(strstr(e.msg, "d.wav: sample 2 "));
    const double ok[3] = {0.5, -0.5, 3.0}; /* out of [-1, 1] but finite: read as is, as soundfile does */
    n = make_wav(b, 3, 1, 8000, 64, ok, sizeof ok, 0);
    assert_int_equal(snn_wav_parse(b, n, "o.wav", &snn_test_allocator, &w, &e), 0);
    assert_true(w.x[2] == 3.0f);
    snn_wav_free(&w);
}

/* A recording cut short (RIFF and data sizes larger than the bytes present, or a RIFF size
 * too small) is read as soundfile reads it: the whole frames present, a trailing half sample
 * dropped. A chunk other than data that runs past the end is still a format error. */
static void test_truncated(void **st)
{
    (void)st;
    uint8_t b[256];
    const int16_t s[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    size_t n = make_wav(b, 1, 1, 16000, 16, s, sizeof s, 0);
    snn_wav w;
    snn_err e = {{0}};
    parse_ok(b, n - 5, &w); /* 16 data bytes, 11 present: 5 whole samples */
    assert_int_equal(w.n, 5);
    assert_float_equal(w.x[4], 5.0f / 32768.0f, 0);
    snn_wav_free(&w);
    put32(b + 4, (uint32_t)(n - 5 - 8)); /* RIFF size patched to match the cut, data size not */
    parse_ok(b, n - 5, &w);
    assert_int_equal(w.n, 5);
    snn_wav_free(&w);
    put32(b + 4, 20); /* RIFF size too small: the data chunk is still read whole */
    parse_ok(b, n, &w);
    assert_int_equal(w.n, 8);
    assert_float_equal(w.x[7], 8.0f / 32768.0f, 0);
    snn_wav_free(&w);
    n = make_wav(b, 1, 1, 16000, 16, s, sizeof s, 1); /* LIST cut in the middle, before data */
    assert_int_equal(snn_wav_parse(b, 45, "t.wav", &snn_test_allocator, &w, &e), -SNN_EFORMAT);
    assert_non_null(strstr(e.msg, "t.wav: chunk 'LIST' at byte 36: size 3 runs past the end"));
}

/* A file written to a pipe carries placeholder sizes (sox: 0x7FFFF024 / 0x7FFFF000; others
 * 0xFFFFFFFF or 0): it is read to its end in whole frames, a trailing half frame dropped. */
static void test_streamed_sizes(void **st)
{
    (void)st;
    uint8_t b[256];
    const int16_t s[4] = {100, 200, 300, 400}; /* 2 stereo frames */
    const uint32_t riff_sz[3] = {0x7FFFF024u, 0xFFFFFFFFu, 0};
    const uint32_t data_sz[3] = {0x7FFFF000u, 0xFFFFFFFFu, 0};
    for (int k = 0; k < 3; k++) {
        size_t n = make_wav(b, 1, 2, 16000, 16, s, sizeof s, 0);
        b[n++] = 0x55; /* half a sample left over */
        put32(b + 4, riff_sz[k]);
        put32(b + 40, data_sz[k]);
        snn_wav w;
        parse_ok(b, n, &w);
        assert_int_equal(w.n, 2);
        assert_float_equal(w.x[0], 150.0f / 32768.0f, 0);
        assert_float_equal(w.x[1], 350.0f / 32768.0f, 0);
        snn_wav_free(&w);
    }
}

/* Garbage and a header alone are format errors. */
static void test_garbage(void **st)
{
    (void)st;
    snn_wav w;
    snn_err e = {{0}};
    const uint8_t junk[16] = "hello, world!!!";
    assert_int_equal(snn_wav_parse(junk, sizeof junk, "g.wav", &snn_test_allocator, &w, &e),
                     -SNN_EFORMAT);
    assert_string_equal(e.msg, "g.wav: not a RIFF/WAVE file");
    uint8_t hdr[12];
    memcpy(hdr, "RIFF\x04\x00\x00\x00WAVE", 12);
    assert_int_equal(snn_wav_parse(hdr, 12, "h.wav", &snn_test_allocator, &w, &e), -SNN_EFORMAT);
    assert_string_equal(e.msg, "h.wav: no fmt chunk");
    assert_int_equal(snn_wav_parse(hdr, 0, "e.wav", &snn_test_allocator, &w, &e), -SNN_EFORMAT);
    assert_string_equal(e.msg, "e.wav: empty file");
}

/* The other integer widths scale as libsndfile does: 8-bit unsigned around 128 over 128,
 * 24 and 32-bit signed over 2^23 and 2^31; 64-bit float is narrowed to float. */
static void test_int_and_f64(void **st)
{
    (void)st;
    uint8_t b[256];
    snn_wav w;
    const uint8_t u8[4] = {128, 0, 255, 192};
    parse_ok(b, make_wav(b, 1, 1, 8000, 8, u8, sizeof u8, 0), &w);
    assert_int_equal(w.n, 4);
    assert_int_equal(w.bits, 8);
    const float want8[4] = {0.0f, -1.0f, 127.0f / 128.0f, 0.5f};
    assert_memory_equal(w.x, want8, sizeof want8);
    snn_wav_free(&w);

    const uint8_t s24[9] = {0, 0, 0x40, 0, 0, 0x80, 0xff, 0xff, 0x7f}; /* 2^22, -2^23, 2^23-1 */
    parse_ok(b, make_wav(b, 1, 1, 44100, 24, s24, sizeof s24, 1), &w);
    assert_int_equal(w.n, 3);
    assert_int_equal(w.sample_rate, 44100);
    assert_float_equal(w.x[0], 0.5f, 0);
    assert_float_equal(w.x[1], -1.0f, 0);
    assert_float_equal(w.x[2], (float)(8388607.0 / 8388608.0), 0);
    snn_wav_free(&w);

    const int32_t s32[3] = {1 << 29, INT32_MIN, -(1 << 30)};
    parse_ok(b, make_wav(b, 1, 1, 16000, 32, s32, sizeof s32, 0), &w);
    assert_float_equal(w.x[0], 0.25f, 0);
    assert_float_equal(w.x[1], -1.0f, 0);
    assert_float_equal(w.x[2], -0.5f, 0);
    snn_wav_free(&w);

    const double f64[3] = {0.125, -0.375, 0.1};
    parse_ok(b, make_wav(b, 3, 1, 16000, 64, f64, sizeof f64, 0), &w);
    assert_int_equal(w.format, SNN_WAV_FLOAT);
    assert_float_equal(w.x[0], 0.125f, 0);
    assert_float_equal(w.x[1], -0.375f, 0);
    assert_float_equal(w.x[2], 0.1f, 0);
    snn_wav_free(&w);
}

/* G.711: the 16-bit linear values sox decodes these bytes to, over 32768; a byte a sample
 * even when the bits field says otherwise (libsndfile reads it so). */
static void test_g711(void **st)
{
    (void)st;
    uint8_t b[256];
    snn_wav w;
    const uint8_t mu[6] = {0xff, 0x00, 0x80, 0x7f, 0x0f, 0x8f};
    const int mu_lin[6] = {0, -32124, 32124, 0, -16764, 16764};
    parse_ok(b, make_wav(b, 7, 1, 8000, 8, mu, sizeof mu, 0), &w);
    assert_int_equal(w.format, SNN_WAV_MULAW);
    for (int i = 0; i < 6; i++)
        assert_float_equal(w.x[i], mu_lin[i] / 32768.0f, 0);
    snn_wav_free(&w);
    const uint8_t al[6] = {0xd5, 0x55, 0xaa, 0x2a, 0x80, 0x00};
    const int al_lin[6] = {8, -8, 32256, -32256, 5504, -5504};
    parse_ok(b, make_wav(b, 6, 1, 8000, 8, al, sizeof al, 0), &w);
    assert_int_equal(w.format, SNN_WAV_ALAW);
    for (int i = 0; i < 6; i++)
        assert_float_equal(w.x[i], al_lin[i] / 32768.0f, 0);
    snn_wav_free(&w);
    size_t n = make_wav(b, 6, 1, 8000, 8, al, sizeof al, 0);
    put16(b + 34, 16); /* bits 16 */
    parse_ok(b, n, &w);
    assert_int_equal(w.n, 6);
    for (int i = 0; i < 6; i++)
        assert_float_equal(w.x[i], al_lin[i] / 32768.0f, 0);
    snn_wav_free(&w);
}

/* Several channels become their mean, frame by frame (librosa.to_mono). */
static void test_downmix(void **st)
{
    (void)st;
    uint8_t b[256];
    snn_wav w;
    const int16_t st2[6] = {16384, 0, -32768, 16384, 100, 300}; /* L R L R L R */
    parse_ok(b, make_wav(b, 1, 2, 48000, 16, st2, sizeof st2, 0), &w);
    assert_int_equal(w.channels, 2);
    assert_int_equal(w.n, 3);
    assert_float_equal(w.x[0], 0.25f, 0);
    assert_float_equal(w.x[1], -0.25f, 0);
    assert_float_equal(w.x[2], 200.0f / 32768.0f, 0);
    snn_wav_free(&w);
    const float f3[6] = {0.3f, 0.6f, 0.9f, -1.0f, 0.0f, 1.0f}; /* 3 channels, 2 frames */
    parse_ok(b, make_wav(b, 3, 3, 16000, 32, f3, sizeof f3, 0), &w);
    assert_int_equal(w.n, 2);
    assert_float_equal(w.x[0], 0.6f, 1e-7);
    assert_float_equal(w.x[1], 0.0f, 0);
    snn_wav_free(&w);
}

/* Valid WAVE that snnd does not decode (ADPCM, 48-bit PCM, 16-bit float, no channels) is named
 * in the error, as is a RIFX file; a sample rate of 0 is a format error. */
static void test_unsupported(void **st)
{
    (void)st;
    uint8_t b[256];
    const int16_t s[4] = {0};
    snn_wav w;
    snn_err e = {{0}};
    size_t n = make_wav(b, 2, 1, 16000, 4, s, sizeof s, 0);
    assert_int_equal(snn_wav_parse(b, n, "adpcm.wav", &snn_test_allocator, &w, &e), -SNN_ENOTSUP);
    assert_non_null(strstr(e.msg, "adpcm.wav: fmt: format 2 (MS ADPCM) with 4 bits (supported: PCM 1..32-bit"));
    n = make_wav(b, 1, 1, 16000, 48, s, sizeof s, 0);
    assert_int_equal(snn_wav_parse(b, n, "48.wav", &snn_test_allocator, &w, &e), -SNN_ENOTSUP);
    assert_non_null(strstr(e.msg, "format 1 (PCM) with 48 bits"));
    n = make_wav(b, 3, 1, 16000, 16, s, sizeof s, 0);
    assert_int_equal(snn_wav_parse(b, n, "h.wav", &snn_test_allocator, &w, &e), -SNN_ENOTSUP);
    assert_non_null(strstr(e.msg, "format 3 (IEEE float) with 16 bits"));
    n = make_wav(b, 1, 0, 16000, 16, s, sizeof s, 0);
    assert_int_equal(snn_wav_parse(b, n, "0.wav", &snn_test_allocator, &w, &e), -SNN_ENOTSUP);
    assert_string_equal(e.msg, "0.wav: fmt: 0 channels (supported: 1 to 64)");
    n = make_wav(b, 1, 1, 0, 16, s, sizeof s, 0);
    assert_int_equal(snn_wav_parse(b, n, "r.wav", &snn_test_allocator, &w, &e), -SNN_EFORMAT);
    assert_string_equal(e.msg, "r.wav: fmt: sample rate 0");
    n = make_wav(b, 1, 1, 16000, 16, s, sizeof s, 0);
    memcpy(b, "RIFX", 4);
    assert_int_equal(snn_wav_parse(b, n, "x.wav", &snn_test_allocator, &w, &e), -SNN_ENOTSUP);
    assert_non_null(strstr(e.msg, "x.wav: big-endian RIFX WAVE file: not supported"));
}

/* PCM whose bits are not a multiple of 8 is read from its whole-byte container, over the
 * container's full scale, as libsndfile does (12-bit in 2 bytes, 20-bit in 3, 4-bit in 1). */
static void test_pcm_odd_widths(void **st)
{
    (void)st;
    uint8_t b[256];
    snn_wav w;
    const int16_t s12[3] = {2047 * 16, -2048 * 16, 16};
    parse_ok(b, make_wav(b, 1, 1, 16000, 12, s12, sizeof s12, 0), &w);
    assert_int_equal(w.n, 3);
    assert_int_equal(w.bits, 12);
    assert_float_equal(w.x[0], 32752.0f / 32768.0f, 0);
    assert_float_equal(w.x[1], -1.0f, 0);
    assert_float_equal(w.x[2], 16.0f / 32768.0f, 0);
    snn_wav_free(&w);
    const uint8_t s20[6] = {0x10, 0, 0x40, 0xf0, 0xff, 0xff}; /* 2^22 + 16, -16 (20 bits << 4) */
    size_t n = make_wav(b, 1, 1, 16000, 20, s20, sizeof s20, 0);
    put16(b + 32, 3); /* block_align: the 3-byte container (make_wav writes 20 / 8 = 2) */
    parse_ok(b, n, &w);
    assert_int_equal(w.n, 2);
    assert_float_equal(w.x[0], (float)((4194304.0 + 16) / 8388608.0), 0);
    assert_float_equal(w.x[1], (float)(-16 / 8388608.0), 0);
    snn_wav_free(&w);
    const uint8_t u4[2] = {0x80, 0x40};
    parse_ok(b, make_wav(b, 1, 1, 8000, 4, u4, sizeof u4, 0), &w);
    assert_int_equal(w.n, 2);
    assert_float_equal(w.x[1], -0.5f, 0);
    snn_wav_free(&w);
}

/* block_align and byte_rate that disagree with channels x bits are ignored, and a data chunk
 * ending in part of a frame loses that part, as libsndfile reads such files. */
static void test_loose_fmt_fields(void **st)
{
    (void)st;
    uint8_t b[256];
    snn_wav w;
    const int16_t s[5] = {100, 300, -200, 0, 7}; /* 2 stereo frames and half a frame */
    const uint16_t align[3] = {2, 8, 0};
    for (int k = 0; k < 3; k++) {
        size_t n = make_wav(b, 1, 2, 16000, 16, s, sizeof s, 0);
        put16(b + 32, align[k]);
        put32(b + 28, 12345); /* byte_rate */
        parse_ok(b, n, &w);
        assert_int_equal(w.n, 2);
        assert_float_equal(w.x[0], 200.0f / 32768.0f, 0);
        assert_float_equal(w.x[1], -100.0f / 32768.0f, 0);
        snn_wav_free(&w);
    }
}

/* Sony Wave64: GUID chunk ids, 64-bit sizes counting the 24-byte header, chunks padded to 8
 * bytes (here a 3-byte chunk before fmt). */
static void test_w64(void **st)
{
    (void)st;
    static const uint8_t tail[12] = {0xF3, 0xAC, 0xD3, 0x11, 0x8C, 0xD1, 0x00, 0xC0, 0x4F, 0x8E, 0xDB, 0x8A};
    static const uint8_t riff[16] = {'r', 'i', 'f', 'f', 0x2E, 0x91, 0xCF, 0x11,
                                     0xA5, 0xD6, 0x28, 0xDB, 0x04, 0xC1, 0x00, 0x00};
    uint8_t b[256] = {0};
    size_t k = 0;
    memcpy(b, riff, 16); k = 24;
    memcpy(b + k, "wave", 4); memcpy(b + k + 4, tail, 12); k += 16;
    memcpy(b + k, "levl", 4); memcpy(b + k + 4, tail, 12); put32(b + k + 16, 24 + 3); k += 24 + 8;
    memcpy(b + k, "fmt ", 4); memcpy(b + k + 4, tail, 12); put32(b + k + 16, 24 + 16); k += 24;
    k += put16(b + k, 1);
    k += put16(b + k, 2);
    k += put32(b + k, 32000);
    k += put32(b + k, 128000);
    k += put16(b + k, 4);
    k += put16(b + k, 16);
    memcpy(b + k, "data", 4); memcpy(b + k + 4, tail, 12); put32(b + k + 16, 24 + 8); k += 24;
    const int16_t s[4] = {1000, 3000, -500, -1500};
    memcpy(b + k, s, sizeof s); k += sizeof s;
    put32(b + 16, (uint32_t)k);
    snn_wav w;
    parse_ok(b, k, &w);
    assert_int_equal(w.sample_rate, 32000);
    assert_int_equal(w.n, 2);
    assert_float_equal(w.x[0], 2000.0f / 32768.0f, 0);
    assert_float_equal(w.x[1], -1000.0f / 32768.0f, 0);
    snn_wav_free(&w);
    parse_ok(b, k - 3, &w); /* cut short: the whole frames present */
    assert_int_equal(w.n, 1);
    snn_wav_free(&w);
}

/* RF64 (EBU Tech 3306): the RIFF and data sizes 0xFFFFFFFF, the data size taken from the ds64
 * chunk; chunks after data are not read as samples. */
static void test_rf64(void **st)
{
    (void)st;
    uint8_t b[256], r[256];
    snn_wav w;
    const int16_t s[4] = {1000, -1000, 2000, 4000};
    size_t n = make_wav(b, 1, 1, 16000, 16, s, sizeof s, 0);
    memcpy(r, "RF64\xff\xff\xff\xffWAVEds64", 16);
    put32(r + 16, 28);
    memset(r + 20, 0, 28);
    put32(r + 20, (uint32_t)(n + 36 - 8)); /* riff size, 64-bit */
    put32(r + 28, 6); /* data size, 64-bit: 3 of the 4 samples, the 4th is a chunk's bytes */
    memcpy(r + 48, b + 12, n - 12);
    put32(r + 48 + 28, 0xFFFFFFFFu); /* data chunk size: see ds64 */
    parse_ok(r, n + 36, &w);
    assert_int_equal(w.n, 3);
    assert_float_equal(w.x[0], 1000.0f / 32768.0f, 0);
    assert_float_equal(w.x[2], 2000.0f / 32768.0f, 0);
    snn_wav_free(&w);
}

/* A missing file is ENOENT naming the path. */
static void test_missing_file(void **st)
{
    (void)st;
    snn_wav w;
    snn_err e = {{0}};
    assert_int_equal(snn_wav_read("/nonexistent/x.wav", NULL, &w, &e), -SNN_ENOENT);
    assert_non_null(strstr(e.msg, "/nonexistent/x.wav"));
}

/* RMS of x[from..to) */
static double rms(const float *x, size_t from, size_t to)
{
    double s = 0;
    for (size_t i = from; i < to; i++)
        s += (double)x[i] * x[i];
    return sqrt(s / (double)(to - from));
}

/* Resampling a 1 kHz sine of amplitude 0.5 from 8, 44.1 and 48 kHz to 16 kHz keeps its length
 * (n * 16000 / rate), its RMS (0.5 / sqrt 2, within 1%) and its frequency (zero crossings:
 * 2000 per second, within 1%); 16 kHz is copied bit for bit. */
static void test_resample_tone(void **st)
{
    (void)st;
    const double rates[3] = {8000, 44100, 48000};
    for (int r = 0; r < 3; r++) {
        size_t n = (size_t)rates[r]; /* 1 s */
        float *x = malloc(n * sizeof *x);
        for (size_t i = 0; i < n; i++)
            x[i] = (float)(0.5 * sin(2 * M_PI * 1000.0 * (double)i / rates[r]));
        float *y;
        size_t ny;
        snn_err e = {{0}};
        assert_int_equal(snn_resample(x, n, rates[r], 16000, &snn_test_allocator, &y, &ny, &e), 0);
        assert_int_equal(ny, 16000);
        assert_float_equal(rms(y, 1000, 15000), 0.5 / sqrt(2.0), 0.01 * 0.5 / sqrt(2.0));
        int zc = 0;
        for (size_t i = 1000; i < 15000; i++)
            zc += (y[i - 1] < 0) != (y[i] < 0);
        assert_in_range(zc, 1750 - 17, 1750 + 17); /* 14000 samples = 0.875 s */
        test_free(y);
        free(x);
    }
    const float x16[5] = {0.1f, -0.2f, 0.3f, 0.4f, -0.5f};
    float *y;
    size_t ny;
    assert_int_equal(snn_resample(x16, 5, 16000, 16000, &snn_test_allocator, &y, &ny, NULL), 0);
    assert_int_equal(ny, 5);
    assert_memory_equal(y, x16, sizeof x16);
    test_free(y);
}

/* Rates outside 1..384 kHz are refused. */
static void test_resample_bad_rate(void **st)
{
    (void)st;
    snn_resampler *r;
    snn_err e = {{0}};
    assert_int_equal(snn_resampler_new(0, 16000, NULL, &r, &e), -SNN_EINVAL);
    assert_non_null(strstr(e.msg, "rate 0 -> 16000 Hz"));
}

/* snn_wav_read reads a pipe to its end (no file size to ask) and names a directory. */
static void test_read_pipe_and_directory(void **st)
{
    (void)st;
    static uint8_t b[40000];
    static int16_t s[16000];
    for (int i = 0; i < 16000; i++)
        s[i] = (int16_t)(i * 3 - 24000);
    size_t n = make_wav(b, 1, 1, 16000, 16, s, sizeof s, 0);
    assert_true(n < 65536); /* fits a pipe's buffer: written whole before it is read */
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    assert_int_equal(write(fd[1], b, n), (ssize_t)n);
    close(fd[1]);
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd[0]);
    snn_wav w;
    snn_err e = {{0}};
    if (snn_wav_read(path, &snn_test_allocator, &w, &e) < 0)
        fail_msg("%s", e.msg);
    close(fd[0]);
    assert_int_equal(w.n, 16000);
    assert_float_equal(w.x[15999], (float)(15999 * 3 - 24000) / 32768.0f, 0);
    snn_wav_free(&w);

    assert_int_equal(snn_wav_read("/tmp", &snn_test_allocator, &w, &e), -SNN_EIO);
    assert_non_null(strstr(e.msg, "Is a directory"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_s16_mono),
        cmocka_unit_test(test_f32_mono),
        cmocka_unit_test(test_non_finite),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_streamed_sizes),
        cmocka_unit_test(test_int_and_f64),
        cmocka_unit_test(test_g711),
        cmocka_unit_test(test_downmix),
        cmocka_unit_test(test_unsupported),
        cmocka_unit_test(test_pcm_odd_widths),
        cmocka_unit_test(test_read_pipe_and_directory),
        cmocka_unit_test(test_loose_fmt_fields),
        cmocka_unit_test(test_rf64),
        cmocka_unit_test(test_w64),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_resample_tone),
        cmocka_unit_test(test_resample_bad_rate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
