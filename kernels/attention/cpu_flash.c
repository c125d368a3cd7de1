/* Non-causal bf16 attention for x86 CPUs with AVX512-BF16 (flash form, fp32 softmax).
 *
 * out[b, i, h, :] = softmax_j(scale * q[b,h,i,:] . k[b,h,j,:]) @ v[b,h,:,:]
 *
 * Why it exists: PyTorch's CPU SDPA reaches ~130 GFLOP/s on the vision tower's 3,520-patch
 * attention on an AVX512-BF16 CPU without AMX, while its bf16 GEMM reaches ~360. Here both
 * products run on `vdpbf16ps` register tiles (bf16 inputs, fp32 accumulation) and the
 * softmax is one pass per key block (online rescaling), so the kernel stays close to GEMM speed.
 *
 * Numerics (same as flash attention in bf16): scores and softmax in fp32, probabilities rounded
 * to bf16 for the second product, fp32 accumulation, one rounding of the output to bf16.
 *
 * Layout: q, k, v, out are bf16 (uint16_t bit patterns) with the head dim contiguous and
 * arbitrary element strides for (batch, head, token), so strided views (e.g. q/k/v inside one
 * fused qkv buffer) need no copies. Requirements (checked by the Python wrapper): D even,
 * D <= MAX_D.
 *
 * Packing: per (batch, head), K is packed into 16-key tiles of bf16 pairs along D ("VNNI"
 * layout: one zmm = 16 keys x 2 dims) and V into key pairs x D (one zmm = 16 dims x 2 keys),
 * zero padded, so every inner loop is aligned loads + broadcasts + vdpbf16ps.
 */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_D 256
#ifndef QB
#define QB 48   /* query rows per task (multiple of ROWS) */
#endif
#ifndef KB
#define KB 256  /* keys per softmax block (multiple of 64) */
#endif
#define ROWS 6  /* register tile rows */

static inline __m512bh as_bh(__m512i x) { return (__m512bh)x; }

static inline int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

/* 2^x for x <= 0 (softmax arguments); x = -inf gives 0. Degree-5 Taylor on [-0.5, 0.5]:
 * relative error < 3e-6, far below the bf16 rounding of the probabilities. */
static inline __m512 exp2_ps(__m512 x) {
    x = _mm512_max_ps(x, _mm512_set1_ps(-150.0f));
    __m512 n = _mm512_roundscale_ps(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 f = _mm512_sub_ps(x, n);
    __m512 p = _mm512_set1_ps(1.3333558e-3f);                  /* ln2^5 / 120 */
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.6181291e-3f));  /* ln2^4 / 24 */
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.5504109e-2f));  /* ln2^3 / 6 */
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.4022651e-1f));  /* ln2^2 / 2 */
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.9314718e-1f));  /* ln2 */
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

static inline float bf16_to_f32(uint16_t x) {
    uint32_t u = (uint32_t)x << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* K of one head -> tiles [L16/16][D/2][16] of uint32 (bf16 pair of dims 2p, 2p+1 of one key). */
static void pack_k(const uint16_t *k, int64_t sl, int64_t L, int64_t D, uint32_t *kp) {
    const int64_t pairs = D / 2, tiles = round_up(L, 16) / 16;
    for (int64_t t = 0; t < tiles; t++) {
        uint32_t *tile = kp + t * pairs * 16;
        for (int64_t j = 0; j < 16; j++) {
            const int64_t key = t * 16 + j;
            if (key < L) {
                const uint32_t *row = (const uint32_t *)(k + key * sl);
                for (int64_t p = 0; p < pairs; p++) tile[p * 16 + j] = row[p];
            } else {
                for (int64_t p = 0; p < pairs; p++) tile[p * 16 + j] = 0;
            }
        }
    }
}

/* V of one head -> [L2/2][DV] of uint32 (bf16 pair: keys 2p, 2p+1 at one dim); DV = D padded to 16. */
static void pack_v(const uint16_t *v, int64_t sl, int64_t L, int64_t D, int64_t DV, uint32_t *vp) {
    const int64_t npairs = round_up(L, KB) / 2;
    for (int64_t p = 0; p < npairs; p++) {
        uint32_t *dst = vp + p * DV;
        const int64_t k0 = 2 * p, k1 = 2 * p + 1;
        const uint16_t *r0 = k0 < L ? v + k0 * sl : NULL;
        const uint16_t *r1 = k1 < L ? v + k1 * sl : NULL;
        for (int64_t d = 0; d < DV; d++) {
            uint32_t lo = (r0 && d < D) ? r0[d] : 0, hi = (r1 && d < D) ? r1[d] : 0;
            dst[d] = lo | (hi << 16);
        }
    }
}

/* S[ROWS][64] = Q[ROWS rows of pairs] . K tiles (4 x 16 keys), fp32. q rows are uint32 pairs. */
static inline void qk_tile(const uint32_t *q, int64_t qstride, const uint32_t *ktiles, int64_t pairs,
                           float *s, int64_t sstride) {
    __m512 acc[ROWS][4];
    for (int r = 0; r < ROWS; r++)
        for (int c = 0; c < 4; c++) acc[r][c] = _mm512_setzero_ps();
    const int64_t tile_stride = pairs * 16;
    for (int64_t p = 0; p < pairs; p++) {
        __m512i kv[4];
        for (int c = 0; c < 4; c++) kv[c] = _mm512_load_si512((const void *)(ktiles + c * tile_stride + p * 16));
        for (int r = 0; r < ROWS; r++) {
            __m512i qb = _mm512_set1_epi32((int)q[r * qstride + p]);
            for (int c = 0; c < 4; c++) acc[r][c] = _mm512_dpbf16_ps(acc[r][c], as_bh(qb), as_bh(kv[c]));
        }
    }
    for (int r = 0; r < ROWS; r++)
        for (int c = 0; c < 4; c++) _mm512_store_ps(s + r * sstride + c * 16, acc[r][c]);
}

/* O[ROWS][NT*16] += P[ROWS][2*npairs] (bf16 pairs) @ Vp[npairs][DV], NT zmm per row. */
static inline __attribute__((always_inline)) void pv_tile(const uint32_t *p, int64_t pstride,
                                                          const uint32_t *vp, int64_t DV, int64_t npairs,
                                                          float *o, int64_t ostride, const int NT) {
    __m512 acc[ROWS][4];
    for (int r = 0; r < ROWS; r++)
        for (int c = 0; c < NT; c++) acc[r][c] = _mm512_load_ps(o + r * ostride + c * 16);
    for (int64_t k = 0; k < npairs; k++) {
        __m512i vv[4];
        for (int c = 0; c < NT; c++) vv[c] = _mm512_load_si512((const void *)(vp + k * DV + c * 16));
        for (int r = 0; r < ROWS; r++) {
            __m512i pb = _mm512_set1_epi32((int)p[r * pstride + k]);
            for (int c = 0; c < NT; c++) acc[r][c] = _mm512_dpbf16_ps(acc[r][c], as_bh(pb), as_bh(vv[c]));
        }
    }
    for (int r = 0; r < ROWS; r++)
        for (int c = 0; c < NT; c++) _mm512_store_ps(o + r * ostride + c * 16, acc[r][c]);
}

typedef struct {
    float *s;      /* [QB][KB] scores (log2 domain) */
    uint16_t *p;   /* [QB][KB] probabilities, bf16 */
    float *o;      /* [QB][DV] output accumulator */
    uint16_t *q;   /* [QB][D] query rows, bf16, zero padded */
    float *m, *l;  /* [QB] running max (log2 domain) and sum */
} Scratch;

/* One task: rows [i0, i0+QB) of one (batch, head). */
static void attend_block(const uint16_t *q, int64_t q_sl, const uint32_t *kp, const uint32_t *vp,
                         uint16_t *out, int64_t o_sl, int64_t i0, int64_t L, int64_t D, int64_t DV,
                         float scale_log2, Scratch *w) {
    const int64_t pairs = D / 2, rows = L - i0 < QB ? L - i0 : QB;
    for (int64_t r = 0; r < QB; r++) {
        if (r < rows) memcpy(w->q + r * D, q + (i0 + r) * q_sl, D * 2);
        else memset(w->q + r * D, 0, D * 2);
        w->m[r] = -INFINITY;
        w->l[r] = 0.0f;
    }
    memset(w->o, 0, sizeof(float) * QB * DV);
    const uint32_t *qpairs = (const uint32_t *)w->q;
    const __m512 vscale = _mm512_set1_ps(scale_log2);

    for (int64_t j0 = 0; j0 < L; j0 += KB) {
        const int64_t valid = L - j0 < KB ? L - j0 : KB;
        const int64_t cols = round_up(valid, 64);
        /* scores */
        for (int64_t r = 0; r < QB; r += ROWS)
            for (int64_t c = 0; c < cols; c += 64)
                qk_tile(qpairs + r * pairs, pairs, kp + (j0 + c) / 16 * pairs * 16, pairs, w->s + r * KB + c, KB);
        /* online softmax, row by row */
        for (int64_t r = 0; r < QB; r++) {
            float *s = w->s + r * KB;
            __m512 mx = _mm512_set1_ps(-INFINITY);
            int64_t c = 0;
            for (; c + 16 <= valid; c += 16) mx = _mm512_max_ps(mx, _mm512_load_ps(s + c));
            const __mmask16 tail = (__mmask16)((1u << (valid - c)) - 1u);
            if (c < valid) mx = _mm512_mask_max_ps(mx, tail, mx, _mm512_load_ps(s + c));
            const float m_new = fmaxf(w->m[r], _mm512_reduce_max_ps(mx) * scale_log2);
            const float alpha = exp2f(w->m[r] - m_new); /* 0 on the first block (m = -inf) */
            const __m512 vm = _mm512_set1_ps(m_new);
            __m512 sum = _mm512_setzero_ps();
            uint16_t *p = w->p + r * KB;
            for (c = 0; c < cols; c += 16) {
                __m512 e = exp2_ps(_mm512_fmsub_ps(_mm512_load_ps(s + c), vscale, vm));
                if (c + 16 > valid) /* padded keys get probability 0 */
                    e = _mm512_maskz_mov_ps(c < valid ? (__mmask16)((1u << (valid - c)) - 1u) : 0, e);
                sum = _mm512_add_ps(sum, e);
                _mm256_store_si256((__m256i *)(p + c), (__m256i)_mm512_cvtneps_pbh(e));
            }
            w->l[r] = w->l[r] * alpha + _mm512_reduce_add_ps(sum);
            w->m[r] = m_new;
            if (alpha != 1.0f) {
                const __m512 va = _mm512_set1_ps(alpha);
                for (int64_t d = 0; d < DV; d += 16)
                    _mm512_store_ps(w->o + r * DV + d, _mm512_mul_ps(va, _mm512_load_ps(w->o + r * DV + d)));
            }
        }
        /* O += P V over this key block */
        const int64_t npairs = cols / 2;
        const uint32_t *vblock = vp + j0 / 2 * DV;
        for (int64_t r = 0; r < QB; r += ROWS) {
            const uint32_t *prow = (const uint32_t *)(w->p + r * KB);
            for (int64_t d = 0; d < DV; d += 64) {
                const int64_t left = (DV - d) / 16;
                float *o = w->o + r * DV + d;
                if (left >= 4) pv_tile(prow, KB / 2, vblock + d, DV, npairs, o, DV, 4);
                else if (left == 3) pv_tile(prow, KB / 2, vblock + d, DV, npairs, o, DV, 3);
                else if (left == 2) pv_tile(prow, KB / 2, vblock + d, DV, npairs, o, DV, 2);
                else pv_tile(prow, KB / 2, vblock + d, DV, npairs, o, DV, 1);
            }
        }
    }
    /* normalise and round once to bf16 */
    for (int64_t r = 0; r < rows; r++) {
        const __m512 inv = _mm512_set1_ps(1.0f / w->l[r]);
        uint16_t *dst = out + (i0 + r) * o_sl;
        int64_t d = 0;
        for (; d + 16 <= D; d += 16) {
            __m256bh y = _mm512_cvtneps_pbh(_mm512_mul_ps(inv, _mm512_load_ps(w->o + r * DV + d)));
            _mm256_storeu_si256((__m256i *)(dst + d), (__m256i)y);
        }
        if (d < D) {
            __m256bh y = _mm512_cvtneps_pbh(_mm512_mul_ps(inv, _mm512_load_ps(w->o + r * DV + d)));
            uint16_t tmp[16] __attribute__((aligned(32)));
            _mm256_store_si256((__m256i *)tmp, (__m256i)y);
            memcpy(dst + d, tmp, (D - d) * 2);
        }
    }
}

static void *alloc64(size_t bytes) { return aligned_alloc(64, round_up((int64_t)bytes, 64)); }

/* Returns 0 on success, 1 on bad arguments, 2 when out of memory. Strides are in elements:
 * s*_b (batch), s*_h (head), s*_l (token); the head dim is contiguous. */
int vl_attention_bf16(const uint16_t *q, const uint16_t *k, const uint16_t *v, uint16_t *out,
                      int64_t B, int64_t H, int64_t L, int64_t D,
                      int64_t q_sb, int64_t q_sh, int64_t q_sl,
                      int64_t k_sb, int64_t k_sh, int64_t k_sl,
                      int64_t v_sb, int64_t v_sh, int64_t v_sl,
                      int64_t o_sb, int64_t o_sh, int64_t o_sl,
                      float scale, int nthreads) {
    if (D <= 0 || D % 2 || D > MAX_D || L <= 0 || B <= 0 || H <= 0 || nthreads <= 0) return 1;
    const int64_t DV = round_up(D, 16), heads = B * H;
    const int64_t kp_size = round_up(L, KB) * D / 2;  /* uint32 per head */
    const int64_t vp_size = round_up(L, KB) / 2 * DV;
    uint32_t *kp = alloc64(sizeof(uint32_t) * kp_size * heads);
    uint32_t *vp = alloc64(sizeof(uint32_t) * vp_size * heads);
    if (!kp || !vp) {
        free(kp);
        free(vp);
        return 2;
    }
    /* key tiles past L (up to the KB padding) must read as zeros */
    #pragma omp parallel for schedule(static) num_threads(nthreads)
    for (int64_t bh = 0; bh < heads; bh++) {
        const int64_t b = bh / H, h = bh % H;
        uint32_t *kdst = kp + bh * kp_size;
        memset(kdst, 0, sizeof(uint32_t) * kp_size);
        pack_k(k + b * k_sb + h * k_sh, k_sl, L, D, kdst);
        pack_v(v + b * v_sb + h * v_sh, v_sl, L, D, DV, vp + bh * vp_size);
    }
    const int64_t qblocks = (L + QB - 1) / QB, tasks = heads * qblocks;
    const float scale_log2 = scale * 1.4426950408889634f;
    int failed = 0;
    #pragma omp parallel num_threads(nthreads)
    {
        Scratch w;
        w.s = alloc64(sizeof(float) * QB * KB);
        w.p = alloc64(sizeof(uint16_t) * QB * KB);
        w.o = alloc64(sizeof(float) * QB * DV);
        w.q = alloc64(sizeof(uint16_t) * QB * D);
        w.m = alloc64(sizeof(float) * QB);
        w.l = alloc64(sizeof(float) * QB);
        const int ok = w.s && w.p && w.o && w.q && w.m && w.l;
        if (!ok) {
            #pragma omp atomic write
            failed = 1;
        }
        #pragma omp for schedule(dynamic, 1)
        for (int64_t t = 0; t < tasks; t++) {
            if (!ok) continue;
            const int64_t bh = t / qblocks, i0 = (t % qblocks) * QB;
            const int64_t b = bh / H, h = bh % H;
            attend_block(q + b * q_sb + h * q_sh, q_sl, kp + bh * kp_size, vp + bh * vp_size,
                         out + b * o_sb + h * o_sh, o_sl, i0, L, D, DV, scale_log2, &w);
        }
        free(w.s);
        free(w.p);
        free(w.o);
        free(w.q);
        free(w.m);
        free(w.l);
    }
    free(kp);
    free(vp);
    return failed ? 2 : 0;
}

/* 1 when this CPU executes AVX512F + AVX512-BF16 (the loader checks before calling). */
int vl_cpu_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16");
}
