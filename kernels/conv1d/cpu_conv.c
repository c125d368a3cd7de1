/* Depthwise causal conv1d (+ SiLU) over bf16 rows, fp32 accumulation, one rounding (AVX512).
 *
 * y[b, t, d] = act(bias[d] + sum_j w[j, d] * x[b, t - (W-1) + j, d]), where x at negative times
 * comes from history[b, W-1 + (t - (W-1) + j), d] (the W-1 inputs before this prompt piece).
 * One pass over x per output row, everything in registers: the PyTorch version of the same
 * arithmetic makes ~8 tensor passes per block of rows. Needs AVX512F/BW/VL + AVX512-BF16.
 */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>

static inline float bf16_f32(uint16_t h) {
    union { uint32_t u; float f; } v = {(uint32_t)h << 16};
    return v.f;
}

static inline uint16_t f32_bf16(float f) { /* round to nearest even; NaN stays NaN */
    union { float f; uint32_t u; } v = {f};
    if ((v.u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((v.u >> 16) | 0x40u);
    return (uint16_t)((v.u + 0x7fffu + ((v.u >> 16) & 1u)) >> 16);
}

static inline __m512 load_bf16(const uint16_t *p, __mmask16 m) {
    __m256i raw = _mm256_maskz_loadu_epi16(m, p);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(raw), 16));
}

/* e^x, relative error ~1e-7 over fp32's range (degree-7 Taylor of 2^f on [-0.5, 0.5]). */
static inline __m512 exp_ps(__m512 x) {
    __m512 t = _mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f));
    t = _mm512_min_ps(_mm512_max_ps(t, _mm512_set1_ps(-150.0f)), _mm512_set1_ps(128.0f));
    __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 f = _mm512_sub_ps(t, n);
    __m512 p = _mm512_set1_ps(1.5252733804e-5f);             /* ln2^7 / 7! */
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.5403530393e-4f)); /* ln2^6 / 6! */
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.3333558146e-3f)); /* ln2^5 / 5! */
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(9.6181291076e-3f)); /* ln2^4 / 4! */
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(5.5504108665e-2f)); /* ln2^3 / 3! */
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(2.4022650696e-1f)); /* ln2^2 / 2! */
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(6.9314718056e-1f)); /* ln2 */
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

/* x: bf16 [B, T, D] with strides (x_sb, x_st), D contiguous. history: bf16 [B, W-1, D] contiguous.
 * w: fp32 [W, D] contiguous; bias: fp32 [D] or NULL. y: bf16 [B, T, D] contiguous.
 * Returns 0, or 1 for bad arguments. */
int vl_causal_conv1d_bf16(const uint16_t *x, const uint16_t *history, const float *w, const float *bias,
                          uint16_t *y, int64_t B, int64_t T, int64_t D, int64_t W, int64_t x_sb, int64_t x_st,
                          int silu, int nthreads) {
    if (B <= 0 || T < 0 || D <= 0 || W < 2 || W > 16 || nthreads <= 0) return 1;
    #pragma omp parallel for schedule(static) num_threads(nthreads)
    for (int64_t bt = 0; bt < B * T; bt++) {
        const int64_t b = bt / T, t = bt % T;
        const uint16_t *rows[16];
        for (int64_t j = 0; j < W; j++) {
            const int64_t src = t - (W - 1) + j;
            rows[j] = src >= 0 ? x + b * x_sb + src * x_st : history + (b * (W - 1) + (W - 1) + src) * D;
        }
        uint16_t *out = y + (b * T + t) * D;
        for (int64_t d = 0; d < D; d += 16) {
            const __mmask16 m = D - d >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (D - d)) - 1u);
            __m512 acc = bias ? _mm512_maskz_loadu_ps(m, bias + d) : _mm512_setzero_ps();
            for (int64_t j = 0; j < W; j++)
                acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, w + j * D + d), load_bf16(rows[j] + d, m), acc);
            if (silu) {
                const __m512 denom = _mm512_add_ps(_mm512_set1_ps(1.0f), exp_ps(_mm512_sub_ps(_mm512_setzero_ps(), acc)));
                acc = _mm512_div_ps(acc, denom);
            }
            _mm256_mask_storeu_epi16(out + d, m, (__m256i)_mm512_cvtneps_pbh(acc));
        }
    }
    return 0;
}

/* exp_ps on one float, operation for operation (fmaf is the same fused rounding as fmadd), so a
 * decode step rounds exactly like the prompt pass over the same tokens. */
static inline float exp_scalar(float x) {
    float t = x * 1.44269504088896341f;
    t = fminf(fmaxf(t, -150.0f), 128.0f);
    const float n = nearbyintf(t);
    const float f = t - n;
    float p = 1.5252733804e-5f;
    p = fmaf(p, f, 1.5403530393e-4f);
    p = fmaf(p, f, 1.3333558146e-3f);
    p = fmaf(p, f, 9.6181291076e-3f);
    p = fmaf(p, f, 5.5504108665e-2f);
    p = fmaf(p, f, 2.4022650696e-1f);
    p = fmaf(p, f, 6.9314718056e-1f);
    p = fmaf(p, f, 1.0f);
    return ldexpf(p, (int)n);
}

/* One decode token: x bf16 [B, D] (batch stride sx); state bf16 [B, D, W-1] contiguous, oldest first,
 * shifted in place; w bf16 [D, W]; bias bf16 [D] or NULL; y bf16 [B, D] contiguous.
 * The same arithmetic as vl_causal_conv1d_bf16 (bias first, fused multiply-adds in tap order, the
 * same SiLU), so stepping token by token gives the prompt pass's bits. */
int vl_causal_conv1d_update_bf16(const uint16_t *x, int64_t sx, uint16_t *state, const uint16_t *w,
                                 const uint16_t *bias, uint16_t *y, int64_t B, int64_t D, int64_t W, int silu,
                                 int nthreads) {
    if (B <= 0 || D <= 0 || W < 2 || W > 16 || nthreads <= 0) return 1;
    #pragma omp parallel for schedule(static) num_threads(nthreads)
    for (int64_t bd = 0; bd < B * D; bd++) {
        const int64_t b = bd / D, d = bd % D;
        uint16_t *st = state + bd * (W - 1);
        const uint16_t *wd = w + d * W;
        const uint16_t xin = x[b * sx + d];
        float acc = bias ? bf16_f32(bias[d]) : 0.0f;
        for (int64_t j = 0; j < W - 1; j++) acc = fmaf(bf16_f32(wd[j]), bf16_f32(st[j]), acc);
        acc = fmaf(bf16_f32(wd[W - 1]), bf16_f32(xin), acc);
        if (silu) acc = acc / (1.0f + exp_scalar(0.0f - acc));
        for (int64_t j = 0; j + 1 < W - 1; j++) st[j] = st[j + 1];
        st[W - 2] = xin;
        y[bd] = f32_bf16(acc);
    }
    return 0;
}

int vl_cpu_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bf16");
}
