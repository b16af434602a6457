/*
 * amx.c -- split-bfloat16 matrix products on AMX tiles (equation and layouts in amx.h).
 */
#include "amx.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define R16(n) (((n) + 15) / 16 * 16)
#define R32(n) (((n) + 31) / 32 * 32)
#define TILE 512 /* bf16 elements per tile: 16 rows x 64 bytes */

static int amx_on = 1;

void snn_amx_set(int on) { amx_on = on; }

int snn_amx_use(void) { return amx_on && snn_amx_ok(); }

/* uint16_t elements of one packed M x K matrix (hi and lo parts): 2 round16(M) round32(K). */
static size_t a_size(int64_t M, int64_t K) { return (size_t)(2 * R16(M) * R32(K)); }

/* bf16(x), round to nearest even; NaN stays NaN. */
static uint16_t bf16(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    if (isnan(x))
        return (uint16_t)((u >> 16) | 0x40);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

static float from_bf16(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float x;
    memcpy(&x, &u, 4);
    return x;
}

/* Packs a (M x K; element (i, j) at a[i lda + j sda]) as amx.h's A: tiles [M/16][K/32] of
 * 16 x 32, the hi parts then the lo parts, the padding zero. */
static void pack_a(const float *a, int64_t lda, int64_t sda, int64_t M, int64_t K, uint16_t *pa)
{
    const int64_t MB = R16(M) / 16, KB = R32(K) / 32;
    uint16_t *lo = pa + MB * KB * TILE;
    for (int64_t mb = 0; mb < MB; mb++)
        for (int64_t kb = 0; kb < KB; kb++)
            for (int r = 0; r < 16; r++)
                for (int k = 0; k < 32; k++) {
                    int64_t i = mb * 16 + r, j = kb * 32 + k;
                    float x = i < M && j < K ? a[i * lda + j * sda] : 0.0f;
                    uint16_t h = bf16(x);
                    size_t at = (size_t)((mb * KB + kb) * TILE + r * 32 + k);
                    pa[at] = h;
                    lo[at] = bf16(x - from_bf16(h));
                }
}

size_t snn_amx_conv_weights_size(int64_t Co, int64_t C) { return 9 * a_size(Co, C); }

void snn_amx_conv_weights(const float *w, int64_t Co, int64_t C, uint16_t *pw)
{
    for (int t = 0; t < 9; t++)
        pack_a(w + t, 9 * C, 9, Co, C, pw + t * a_size(Co, C));
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__linux__)
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#define AMX_FN __attribute__((target("avx512f,avx512bw,avx512bf16,amx-tile,amx-bf16")))

static int amx_state; /* 0 not asked yet, 1 usable, -1 not */

int snn_amx_ok(void)
{
    int s = __atomic_load_n(&amx_state, __ATOMIC_ACQUIRE);
    if (s)
        return s > 0;
    unsigned a, b, c, d, a1 = 0, b1, c1, d1;
    int ok = __get_cpuid_count(7, 0, &a, &b, &c, &d) && (d >> 22 & 1) && (d >> 24 & 1) &&
             __get_cpuid_count(7, 1, &a1, &b1, &c1, &d1) && (a1 >> 5 & 1) &&
             __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
    /* ARCH_REQ_XCOMP_PERM (0x1023) for XFEATURE_XTILEDATA (18), then
     * ARCH_GET_XCOMP_PERM (0x1022) to see that it holds */
    unsigned long perm = 0;
    const char *env = getenv("SNN_AMX");
    ok = ok && !(env && strcmp(env, "0") == 0) && syscall(SYS_arch_prctl, 0x1023, 18) == 0 &&
         syscall(SYS_arch_prctl, 0x1022, &perm) == 0 && (perm >> 18 & 1);
    __atomic_store_n(&amx_state, ok ? 1 : -1, __ATOMIC_RELEASE);
    return ok;
}

/* The converted input: a ring of 3 rows (the rows a 3x3 output row reads), each as 3 copies
 * shifted by dx = 0, 1, 2 columns so that every tile row a tap loads starts on a 64-byte line
 * (tile loads across lines ran ~3x slower), each copy hi and lo: [slot][dx][hi, lo][P][Wp]
 * 32-bit pairs, P = round32(C) / 2 channel pairs, Wp = round16(OW) columns. */
#define RING_PAIRS(C, OW) ((int64_t)9 * 2 * (R32(C) / 2) * R16(OW))

size_t snn_amx_conv_scratch(int64_t C, int64_t OW)
{
    return (size_t)(2 * RING_PAIRS(C, OW) + 32); /* + 64 bytes to align */
}

/* 16 columns xx .. xx + 15 of channels p0, p1 (rows of x, either NULL for zeros) split into
 * hi and lo pairs (p0's value in the low half): input column xx + i - pl, zero outside
 * 0 .. W - 1 (masked lanes are not read). */
AMX_FN static inline void convert16(const float *p0, const float *p1, int64_t W, int64_t pl,
                                    int64_t xx, __m512i idx, __m512i *hv, __m512i *lv)
{
    int64_t lo = pl - xx, hi = W + pl - xx;
    lo = lo < 0 ? 0 : lo;
    hi = hi > 16 ? 16 : hi;
    __mmask16 m = hi > lo ? (__mmask16)(((1u << hi) - 1u) & ~((1u << lo) - 1u)) : 0;
    __m512 r0 = p0 ? _mm512_maskz_loadu_ps(m, p0 + xx - pl) : _mm512_setzero_ps();
    __m512 r1 = p1 ? _mm512_maskz_loadu_ps(m, p1 + xx - pl) : _mm512_setzero_ps();
    __m512i h = (__m512i)_mm512_cvtne2ps_pbh(r1, r0); /* r0's 16 low, r1's high */
    __m512 h0 = _mm512_castsi512_ps(
        _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(h)), 16));
    __m512 h1 = _mm512_castsi512_ps(
        _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(h, 1)), 16));
    __m512i l = (__m512i)_mm512_cvtne2ps_pbh(_mm512_sub_ps(r1, h1), _mm512_sub_ps(r0, h0));
    *hv = _mm512_permutexvar_epi16(idx, h);
    *lv = _mm512_permutexvar_epi16(idx, l);
}

/* Converts input row iy of x (zeros if outside 0 .. H - 1) into ring slot s (above): column
 * xx of copy dx holds input column xx + dx - pl (zero outside 0 .. W - 1). The shifted copies
 * come from two neighbouring converted vectors (VALIGND), each element converted once. */
AMX_FN static void convert_row(const float *x, int64_t xcs, int64_t C, int64_t H, int64_t W,
                               int64_t pl, int64_t iy, int64_t Wp, uint32_t *slot)
{
    const int64_t P = R32(C) / 2;
    int16_t ix[32];
    for (int j = 0; j < 16; j++)
        ix[2 * j] = (int16_t)j, ix[2 * j + 1] = (int16_t)(16 + j);
    const __m512i idx = _mm512_loadu_si512(ix);
    for (int64_t p = 0; p < P; p++) {
        const float *p0 = iy >= 0 && iy < H && 2 * p < C ? x + 2 * p * xcs + iy * W : NULL;
        const float *p1 = p0 && 2 * p + 1 < C ? p0 + xcs : NULL;
        uint32_t *d0 = slot + p * Wp; /* copy dx, hi: d0 + 2 dx P Wp; lo: + P Wp */
        __m512i ph, pl_, ch, cl;
        convert16(p0, p1, W, pl, 0, idx, &ph, &pl_);
        for (int64_t xx = 16; xx <= Wp; xx += 16) {
            convert16(p0, p1, W, pl, xx, idx, &ch, &cl);
            uint32_t *d = d0 + xx - 16;
            _mm512_store_si512(d, ph);
            _mm512_store_si512(d + P * Wp, pl_);
            _mm512_store_si512(d + 2 * P * Wp, _mm512_alignr_epi32(ch, ph, 1));
            _mm512_store_si512(d + 3 * P * Wp, _mm512_alignr_epi32(cl, pl_, 1));
            _mm512_store_si512(d + 4 * P * Wp, _mm512_alignr_epi32(ch, ph, 2));
            _mm512_store_si512(d + 5 * P * Wp, _mm512_alignr_epi32(cl, pl_, 2));
            ph = ch;
            pl_ = cl;
        }
    }
}

/* The tile configuration: palette 1, tiles 0-7 all 16 rows of 64 bytes. Tiles 0-3 hold the
 * 2 x 2 sums of 32 output channels x 32 columns, 4-5 two A (weight) tiles, 6-7 two B (input)
 * tiles. */
struct tilecfg {
    uint8_t palette, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
};

/* Stores tile t (output channels co0.., columns ox0.. of output row oy) whole when it lies
 * inside Co x OW, else through out, copying only its part inside. */
#define STORE_TILE(t, co0, ox0)                                                                    \
    do {                                                                                           \
        int64_t ni_ = Co - (co0) < 16 ? Co - (co0) : 16, nj_ = OW - (ox0) < 16 ? OW - (ox0) : 16;  \
        float *d_ = y + (co0) * ycs + oy * OW + (ox0);                                             \
        if (ni_ == 16 && nj_ == 16) {                                                              \
            _tile_stored(t, d_, ycs * (int64_t)sizeof(float));                                     \
        } else {                                                                                   \
            _tile_stored(t, out, 64);                                                              \
            for (int64_t r_ = 0; r_ < ni_; r_++)                                                   \
                memcpy(d_ + r_ * ycs, out + r_ * 16, (size_t)nj_ * sizeof(float));                 \
        }                                                                                          \
    } while (0)

/* acc tiles += tile a (4, 5) x tile b (6, 7), for the tiles present */
#define DP4(m2, n2)                                                                                \
    do {                                                                                           \
        _tile_dpbf16ps(0, 4, 6);                                                                   \
        if (n2)                                                                                    \
            _tile_dpbf16ps(1, 4, 7);                                                               \
        if (m2) {                                                                                  \
            _tile_dpbf16ps(2, 5, 6);                                                               \
            if (n2)                                                                                \
                _tile_dpbf16ps(3, 5, 7);                                                           \
        }                                                                                          \
    } while (0)

AMX_FN void snn_amx_conv3x3(const float *x, int64_t xcs, int64_t C, int64_t H, int64_t W,
                            int64_t pt, int64_t pl, const uint16_t *pw, const float *b, int relu,
                            int64_t Co, int64_t OH, int64_t OW, int64_t ycs, float *y,
                            uint16_t *scratch)
{
    const int64_t MB = R16(Co) / 16, NB = R16(OW) / 16, KB = R32(C) / 32, P = R32(C) / 2;
    const int64_t Wp = NB * 16, slot = 6 * P * Wp;
    const size_t na = a_size(Co, C);
    uint32_t *ring = (uint32_t *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63);
    struct tilecfg cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++)
        cfg.colsb[t] = 64, cfg.rows[t] = 16;
    float out[256];
    /* input row iy lives in slot iy mod 3 */
    for (int64_t iy = -pt; iy < 2 - pt; iy++)
        convert_row(x, xcs, C, H, W, pl, iy, Wp, ring + (iy % 3 + 3) % 3 * slot);
    for (int64_t oy = 0; oy < OH; oy++) {
        int64_t iy = oy - pt + 2;
        convert_row(x, xcs, C, H, W, pl, iy, Wp, ring + (iy % 3 + 3) % 3 * slot);
        _tile_loadconfig(&cfg);
        for (int64_t nb = 0; nb < NB; nb += 2) {
            const int n2 = nb + 1 < NB;
            for (int64_t mb = 0; mb < MB; mb += 2) {
                const int m2 = mb + 1 < MB;
                _tile_zero(0);
                _tile_zero(1);
                _tile_zero(2);
                _tile_zero(3);
                for (int t = 0; t < 9; t++) {
                    const uint16_t *ah = pw + t * na, *al = ah + na / 2;
                    /* tap (dy, dx) = (t / 3, t % 3): input row oy - pt + dy, copy dx */
                    const uint32_t *row =
                        ring + ((oy - pt + t / 3) % 3 + 3) % 3 * slot + (t % 3) * 2 * P * Wp;
                    for (int64_t kb = 0; kb < KB; kb++) {
                        const int64_t a0 = (mb * KB + kb) * TILE, a1 = a0 + KB * TILE;
                        const uint32_t *bh = row + kb * 16 * Wp + nb * 16, *bl = bh + P * Wp;
                        const int64_t bs = Wp * 4;
                        /* A_l B_h, then A_h B_h (B stays), then A_h B_l (A stays): 8 tile
                         * loads for 12 products */
                        _tile_loadd(4, al + a0, 64);
                        if (m2)
                            _tile_loadd(5, al + a1, 64);
                        _tile_loadd(6, bh, bs);
                        if (n2)
                            _tile_loadd(7, bh + 16, bs);
                        DP4(m2, n2);
                        _tile_loadd(4, ah + a0, 64);
                        if (m2)
                            _tile_loadd(5, ah + a1, 64);
                        DP4(m2, n2);
                        _tile_loadd(6, bl, bs);
                        if (n2)
                            _tile_loadd(7, bl + 16, bs);
                        DP4(m2, n2);
                    }
                }
                STORE_TILE(0, mb * 16, nb * 16);
                if (n2)
                    STORE_TILE(1, mb * 16, nb * 16 + 16);
                if (m2) {
                    STORE_TILE(2, mb * 16 + 16, nb * 16);
                    if (n2)
                        STORE_TILE(3, mb * 16 + 16, nb * 16 + 16);
                }
            }
        }
        _tile_release();
        if (b || relu)
            for (int64_t co = 0; co < Co; co++) {
                float *d = y + co * ycs + oy * OW, bias = b ? b[co] : 0.0f;
                for (int64_t ox = 0; ox < OW; ox++) {
                    float v = d[ox] + bias;
                    d[ox] = relu && v < 0.0f ? 0.0f : v;
                }
            }
    }
}
#else
int snn_amx_ok(void) { return 0; }

size_t snn_amx_conv_scratch(int64_t C, int64_t OW)
{
    (void)C, (void)OW;
    return 0;
}

void snn_amx_conv3x3(const float *x, int64_t xcs, int64_t C, int64_t H, int64_t W, int64_t pt,
                     int64_t pl, const uint16_t *pw, const float *b, int relu, int64_t Co,
                     int64_t OH, int64_t OW, int64_t ycs, float *y, uint16_t *scratch)
{
    (void)x, (void)xcs, (void)C, (void)H, (void)W, (void)pt, (void)pl, (void)pw, (void)b;
    (void)relu, (void)Co, (void)OH, (void)OW, (void)ycs, (void)y, (void)scratch;
}
#endif
