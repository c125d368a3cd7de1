/* RMSNorm and gated RMSNorm over bf16 rows, fp32 statistics, HF Qwen3.5's roundings (AVX512).
 *
 * rms_norm:       y = bf16(x_hat * (1 + w))  (zero-centred) or bf16(x_hat * w), x_hat = x / rms(x)
 * gated_rms_norm: y = bf16(bf16(w * bf16(x_hat)) * silu(z))   (Qwen3_5RMSNormGated's casts)
 * One pass per row instead of PyTorch's eight small ops: during decoding those ops cost more in
 * dispatch than in arithmetic. Needs AVX512F/BW.
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

static inline float round_bf16(float f) { return bf16_f32(f32_bf16(f)); }

static float inv_rms(const uint16_t *x, int64_t D, float eps) {
    __m512 acc = _mm512_setzero_ps();
    int64_t d = 0;
    for (; d + 16 <= D; d += 16) {
        const __m512 v = _mm512_castsi512_ps(_mm512_slli_epi32(
            _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(x + d))), 16));
        acc = _mm512_fmadd_ps(v, v, acc);
    }
    float ss = _mm512_reduce_add_ps(acc);
    for (; d < D; d++) ss += bf16_f32(x[d]) * bf16_f32(x[d]);
    return 1.0f / sqrtf(ss / (float)D + eps);
}

/* x: bf16 [rows, D] with row stride sx; w: bf16 [D]; y: bf16 [rows, D] contiguous. */
int vl_rms_norm_bf16(const uint16_t *x, int64_t rows, int64_t D, int64_t sx, const uint16_t *w, int zero_centered,
                     float eps, uint16_t *y, int nthreads) {
    if (rows < 0 || D <= 0 || nthreads <= 0) return 1;
    #pragma omp parallel for schedule(static) num_threads(nthreads) if (rows > 1)
    for (int64_t r = 0; r < rows; r++) {
        const uint16_t *xr = x + r * sx;
        const float s = inv_rms(xr, D, eps);
        for (int64_t d = 0; d < D; d++) {
            const float wd = zero_centered ? 1.0f + bf16_f32(w[d]) : bf16_f32(w[d]);
            y[r * D + d] = f32_bf16(bf16_f32(xr[d]) * s * wd);
        }
    }
    return 0;
}

/* x, z: bf16 [rows, D] with row strides sx, sz; w: bf16 [D]; y: bf16 [rows, D] contiguous. */
int vl_gated_rms_norm_bf16(const uint16_t *x, const uint16_t *z, int64_t rows, int64_t D, int64_t sx, int64_t sz,
                           const uint16_t *w, float eps, uint16_t *y, int nthreads) {
    if (rows < 0 || D <= 0 || nthreads <= 0) return 1;
    #pragma omp parallel for schedule(static) num_threads(nthreads) if (rows > 1)
    for (int64_t r = 0; r < rows; r++) {
        const uint16_t *xr = x + r * sx, *zr = z + r * sz;
        const float s = inv_rms(xr, D, eps);
        for (int64_t d = 0; d < D; d++) {
            const float gated = round_bf16(bf16_f32(w[d]) * round_bf16(bf16_f32(xr[d]) * s));
            const float zd = bf16_f32(zr[d]);
            y[r * D + d] = f32_bf16(gated * (zd / (1.0f + expf(-zd))));
        }
    }
    return 0;
}

int vl_cpu_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
}
