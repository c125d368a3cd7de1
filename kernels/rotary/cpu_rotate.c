/* Rotate-half rotary in place on bf16 rows, fp32 arithmetic, one rounding (the vision tower's).
 *
 * For every token t and group g (heads of q and k): x = row[t, g, :D], halves x1 | x2,
 *   x1' = x1 * c - x2 * s,   x2' = x2 * c + x1 * s,   c = cos[t, :D/2], s = sin[t, :D/2]
 * computed in fp32 and rounded once to bf16 (round to nearest even), as transformers does for
 * the vision tower (rotary in fp32, then cast). One pass over the rows instead of the six
 * tensor passes the PyTorch expression takes. Needs AVX512F/BW/VL + AVX512-BF16.
 */
#include <immintrin.h>
#include <stdint.h>

static inline __m512 load_bf16(const uint16_t *p, __mmask16 m) {
    __m256i raw = _mm256_maskz_loadu_epi16(m, p);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(raw), 16));
}

static inline void store_bf16(uint16_t *p, __m512 x, __mmask16 m) {
    _mm256_mask_storeu_epi16(p, m, (__m256i)_mm512_cvtneps_pbh(x));
}

/* x: bf16 [n, G, D], element strides sn (token) and sg (group), D contiguous.
 * cos/sin: fp32 [n, >= D/2] with row stride cs (only the first D/2 columns are read).
 * Returns 0, or 1 for bad arguments. */
int vl_rotate_half_bf16(uint16_t *x, int64_t n, int64_t G, int64_t D, int64_t sn, int64_t sg,
                        const float *cos, const float *sin, int64_t cs, int nthreads) {
    if (n < 0 || G <= 0 || D <= 0 || D % 2 || nthreads <= 0) return 1;
    const int64_t half = D / 2;
    #pragma omp parallel for schedule(static) num_threads(nthreads)
    for (int64_t t = 0; t < n; t++) {
        const float *c = cos + t * cs, *s = sin + t * cs;
        for (int64_t g = 0; g < G; g++) {
            uint16_t *row = x + t * sn + g * sg;
            for (int64_t d = 0; d < half; d += 16) {
                const __mmask16 m = half - d >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (half - d)) - 1u);
                const __m512 vc = _mm512_maskz_loadu_ps(m, c + d), vs = _mm512_maskz_loadu_ps(m, s + d);
                const __m512 x1 = load_bf16(row + d, m), x2 = load_bf16(row + half + d, m);
                store_bf16(row + d, _mm512_sub_ps(_mm512_mul_ps(x1, vc), _mm512_mul_ps(x2, vs)), m);
                store_bf16(row + half + d, _mm512_add_ps(_mm512_mul_ps(x2, vc), _mm512_mul_ps(x1, vs)), m);
            }
        }
    }
    return 0;
}

int vl_cpu_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512bf16");
}
