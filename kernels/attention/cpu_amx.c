/* Non-causal bf16 attention on AMX tiles, head dim 64 (the Qwen3.5 vision tower's).
 *
 * For each (batch, head, block of 16 queries), in one thread:
 *   1. S = Q K^T for all keys on AMX (16 x 16 fp32 tiles), into an L2-resident row buffer;
 *   2. exact softmax per row in AVX512 (max, e^(scale*s - max), sum), probabilities rounded to bf16
 *      (so e^x needs only ~1e-4 relative accuracy: a degree-4 polynomial);
 *   3. O = P V on AMX (four 16 x 16 fp32 accumulator tiles), divided by the row sums, rounded to bf16.
 * K and V are first repacked per head into the pair-interleaved layout AMX's B operand reads.
 * Tiles (all 16 rows x 64 bytes): 0-1 Q (dims 0-31, 32-63), 2 K or V operand, 3 S or P, 4-7 O.
 * Needs AMX-TILE + AMX-BF16 + AVX512F/BW and Linux's permission for tile data (requested here).
 */
#define _GNU_SOURCE /* syscall() under -std=c11 */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define DIM 64
#define MAX_KEYS 32768 /* S and P rows of one 16-query block stay in L2 (16 x 32K x 6 bytes = 3 MB) */
#define ARCH_REQ_XCOMP_PERM 0x1023
#define XFEATURE_XTILEDATA 18

typedef struct {
    uint8_t palette_id, start_row, reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} tile_config;

static void configure_tiles(void) {
    tile_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette_id = 1;
    for (int t = 0; t < 8; t++) {
        cfg.colsb[t] = 64;
        cfg.rows[t] = 16;
    }
    _tile_loadconfig(&cfg);
}

/* 2^t for t <= 0, relative error < 5e-5 (degree-4 Taylor polynomial of 2^f on [-0.5, 0.5]): the
 * result is rounded to bf16 (relative half-step 2e-3) anyway. t is clamped at -126: results stay normal. */
static inline __m512 exp2_bf16_ps(__m512 t) {
    t = _mm512_max_ps(t, _mm512_set1_ps(-126.0f));
    const __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 f = _mm512_sub_ps(t, n);
    __m512 p = _mm512_set1_ps(9.6181291076e-3f);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.5504108665e-2f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.4022650696e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.9314718056e-1f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

/* k, v rows of one head (row stride in elements) -> kp: per 16 keys, per dim half, [16 dim pairs][16 keys][2];
 * vp: per 32 keys, per 16 output dims, [16 key pairs][16 dims][2]. Keys past L are zero. */
static void repack_head(const uint16_t *k, int64_t k_sl, const uint16_t *v, int64_t v_sl, int64_t L, int64_t Lp,
                        uint16_t *kp, uint16_t *vp) {
    for (int64_t n0 = 0; n0 < Lp; n0 += 16)
        for (int half = 0; half < 2; half++) {
            uint16_t *dst = kp + (n0 / 16 * 2 + half) * 512;
            for (int p = 0; p < 16; p++)
                for (int n = 0; n < 16; n++) {
                    const int64_t key = n0 + n;
                    const uint16_t *row = k + key * k_sl + half * 32 + 2 * p;
                    dst[(p * 16 + n) * 2] = key < L ? row[0] : 0;
                    dst[(p * 16 + n) * 2 + 1] = key < L ? row[1] : 0;
                }
        }
    for (int64_t k0 = 0; k0 < Lp; k0 += 32)
        for (int db = 0; db < 4; db++) {
            uint16_t *dst = vp + (k0 / 32 * 4 + db) * 512;
            for (int p = 0; p < 16; p++)
                for (int j = 0; j < 2; j++) {
                    const int64_t key = k0 + 2 * p + j;
                    for (int n = 0; n < 16; n++)
                        dst[(p * 16 + n) * 2 + j] = key < L ? v[key * v_sl + db * 16 + n] : 0;
                }
        }
}

int vl_attention_amx_bf16(const uint16_t *q, const uint16_t *k, const uint16_t *v, uint16_t *out,
                          int64_t B, int64_t H, int64_t L, int64_t D,
                          int64_t q_sb, int64_t q_sh, int64_t q_sl,
                          int64_t k_sb, int64_t k_sh, int64_t k_sl,
                          int64_t v_sb, int64_t v_sh, int64_t v_sl,
                          int64_t o_sb, int64_t o_sh, int64_t o_sl,
                          float scale, int nthreads) {
    if (B <= 0 || H <= 0 || L <= 0 || L > MAX_KEYS || D != DIM || !(scale > 0) || nthreads <= 0) return 1;
    const int64_t Lp = (L + 31) / 32 * 32, heads = B * H, qblocks = (L + 15) / 16;
    uint16_t *packed = aligned_alloc(64, (size_t)heads * Lp * DIM * 2 * sizeof(uint16_t));
    if (!packed) return 2;
    int failed = 0;
    #pragma omp parallel num_threads(nthreads) reduction(| : failed)
    {
        #pragma omp for schedule(static)
        for (int64_t bh = 0; bh < heads; bh++) {
            const int64_t b = bh / H, h = bh % H;
            uint16_t *kp = packed + bh * Lp * DIM * 2, *vp = kp + Lp * DIM;
            repack_head(k + b * k_sb + h * k_sh, k_sl, v + b * v_sb + h * v_sh, v_sl, L, Lp, kp, vp);
        }
        float *s = aligned_alloc(64, 16 * Lp * sizeof(float));
        uint16_t *pbuf = aligned_alloc(64, 16 * Lp * sizeof(uint16_t));
        uint16_t qpad[16 * DIM] __attribute__((aligned(64)));
        float obuf[16 * 16] __attribute__((aligned(64)));
        const int ready = s && pbuf;
        if (ready) configure_tiles();
        failed |= !ready;
        /* every thread reaches the loop (OpenMP requires it); one without buffers skips its tasks and
         * the call returns 2 (a MemoryError in Python) */
        #pragma omp for schedule(dynamic, 4)
        for (int64_t task = 0; task < heads * qblocks; task++) {
            if (!ready) continue;
            {
                const int64_t bh = task / qblocks, r0 = task % qblocks * 16, b = bh / H, h = bh % H;
                const int64_t rows = L - r0 < 16 ? L - r0 : 16;
                const uint16_t *kp = packed + bh * Lp * DIM * 2, *vp = kp + Lp * DIM;
                const uint16_t *qrow = q + b * q_sb + h * q_sh + r0 * q_sl;
                int64_t qstride = q_sl * 2;
                if (rows < 16) { /* the last block: copy its rows, zero the rest */
                    memset(qpad, 0, sizeof qpad);
                    for (int64_t r = 0; r < rows; r++) memcpy(qpad + r * DIM, qrow + r * q_sl, DIM * 2);
                    qrow = qpad;
                    qstride = DIM * 2;
                }
                _tile_loadd(0, qrow, qstride);
                _tile_loadd(1, qrow + 32, qstride);
                for (int64_t n0 = 0; n0 < Lp; n0 += 16) { /* S[:, n0:n0+16] */
                    _tile_zero(3);
                    _tile_loadd(2, kp + (n0 / 16 * 2) * 512, 64);
                    _tile_dpbf16ps(3, 0, 2);
                    _tile_loadd(2, kp + (n0 / 16 * 2 + 1) * 512, 64);
                    _tile_dpbf16ps(3, 1, 2);
                    _tile_stored(3, s + n0, Lp * 4);
                }
                float inv_sum[16];
                for (int r = 0; r < 16; r++) { /* softmax numerators in bf16, keys past L get 0 */
                    float *sr = s + r * Lp;
                    uint16_t *pr = pbuf + r * Lp;
                    __m512 mx = _mm512_set1_ps(-INFINITY);
                    int64_t c = 0;
                    for (; c + 16 <= L; c += 16) mx = _mm512_max_ps(mx, _mm512_loadu_ps(sr + c));
                    if (c < L) mx = _mm512_mask_max_ps(mx, (__mmask16)((1u << (L - c)) - 1u), mx, _mm512_loadu_ps(sr + c));
                    /* e^(scale * (s - max)) = 2^(s * scale * log2e - max * scale * log2e) */
                    const float log2e_scale = scale * 1.44269504088896341f;
                    const __m512 a = _mm512_set1_ps(log2e_scale);
                    const __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(mx) * log2e_scale);
                    __m512 sum = _mm512_setzero_ps();
                    for (c = 0; c + 16 <= L; c += 16) {
                        const __m512 e = exp2_bf16_ps(_mm512_fmsub_ps(_mm512_loadu_ps(sr + c), a, m));
                        _mm256_storeu_si256((__m256i *)(pr + c), (__m256i)_mm512_cvtneps_pbh(e));
                        sum = _mm512_add_ps(sum, e);
                    }
                    for (; c < Lp; c += 16) { /* the tail: keys past L get 0 */
                        const __mmask16 valid = c < L ? (__mmask16)((1u << (L - c)) - 1u) : (__mmask16)0;
                        const __m512 e = _mm512_maskz_mov_ps(valid, exp2_bf16_ps(_mm512_fmsub_ps(_mm512_loadu_ps(sr + c), a, m)));
                        _mm256_storeu_si256((__m256i *)(pr + c), (__m256i)_mm512_cvtneps_pbh(e));
                        sum = _mm512_add_ps(sum, e);
                    }
                    inv_sum[r] = 1.0f / _mm512_reduce_add_ps(sum);
                }
                _tile_zero(4);
                _tile_zero(5);
                _tile_zero(6);
                _tile_zero(7);
                for (int64_t k0 = 0; k0 < Lp; k0 += 32) { /* O += P[:, k0:k0+32] V[k0:k0+32] */
                    const uint16_t *vb = vp + (k0 / 32 * 4) * 512;
                    _tile_loadd(3, pbuf + k0, Lp * 2);
                    _tile_loadd(2, vb, 64);
                    _tile_dpbf16ps(4, 3, 2);
                    _tile_loadd(2, vb + 512, 64);
                    _tile_dpbf16ps(5, 3, 2);
                    _tile_loadd(2, vb + 1024, 64);
                    _tile_dpbf16ps(6, 3, 2);
                    _tile_loadd(2, vb + 1536, 64);
                    _tile_dpbf16ps(7, 3, 2);
                }
                uint16_t *orow = out + b * o_sb + h * o_sh + r0 * o_sl;
                for (int db = 0; db < 4; db++) {
                    switch (db) {
                        case 0: _tile_stored(4, obuf, 64); break;
                        case 1: _tile_stored(5, obuf, 64); break;
                        case 2: _tile_stored(6, obuf, 64); break;
                        default: _tile_stored(7, obuf, 64); break;
                    }
                    for (int64_t r = 0; r < rows; r++) {
                        const __m512 o = _mm512_mul_ps(_mm512_load_ps(obuf + r * 16), _mm512_set1_ps(inv_sum[r]));
                        _mm256_storeu_si256((__m256i *)(orow + r * o_sl + db * 16), (__m256i)_mm512_cvtneps_pbh(o));
                    }
                }
            }
        }
        if (ready) _tile_release();
        free(s);
        free(pbuf);
    }
    free(packed);
    return failed ? 2 : 0;
}

int vl_cpu_supported(void) {
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
        !__builtin_cpu_supports("avx512bf16") || !__builtin_cpu_supports("amx-tile") ||
        !__builtin_cpu_supports("amx-bf16"))
        return 0;
    return syscall(SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) == 0;
}
