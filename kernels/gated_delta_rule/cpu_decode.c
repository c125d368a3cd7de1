/* One decode token of the gated delta rule, gates fused, state updated in place (AVX512).
 *
 * Per sequence b and value head j (q/k head j / (HV/H)), in fp32:
 *   g = -exp(A_log[j]) * softplus(a + dt_bias[j]),  beta = bf16(sigmoid(b))  (transformers' rounding)
 *   q, k L2-normalised (eps 1e-6), q *= scale
 *   S *= e^g;  delta = (v - k^T S) * beta;  S += k delta^T;  o = q^T S
 * Two passes over the K x V state (decay + k^T S, then update + q^T S) instead of the four
 * state-sized passes of the PyTorch version, and no per-layer gate ops. Needs AVX512F.
 */
#include <immintrin.h>
#include <math.h>
#include <stdint.h>

#define MAX_DIM 512

static inline float bf16_to_f32(uint16_t h) {
    union { uint32_t u; float f; } v = {(uint32_t)h << 16};
    return v.f;
}

static inline uint16_t f32_to_bf16(float f) { /* round to nearest even; NaN stays NaN */
    union { float f; uint32_t u; } v = {f};
    if ((v.u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((v.u >> 16) | 0x40u);
    return (uint16_t)((v.u + 0x7fffu + ((v.u >> 16) & 1u)) >> 16);
}

static void load_normalised(const uint16_t *x, int64_t n, int l2norm, float scale, float *out) {
    float ss = 0.0f;
    for (int64_t i = 0; i < n; i++) {
        out[i] = bf16_to_f32(x[i]);
        ss += out[i] * out[i];
    }
    const float f = (l2norm ? 1.0f / sqrtf(ss + 1e-6f) : 1.0f) * scale;
    for (int64_t i = 0; i < n; i++) out[i] *= f;
}

/* q, k: bf16 [B, H, K] (batch strides sq, sk; heads contiguous); v: bf16 [B, HV, V] (batch stride sv);
 * a, b: bf16 [B, HV] (batch strides sa, sb); A_log, dt_bias: bf16 [HV]; state: fp32 [B, HV, K, V]
 * contiguous, updated in place; o: bf16 [B, HV, V] contiguous. V a multiple of 16, K, V <= 512.
 * Returns 0, or 1 for bad arguments. */
int vl_gated_delta_decode_bf16(const uint16_t *q, const uint16_t *k, const uint16_t *v, const uint16_t *a,
                               const uint16_t *b, const uint16_t *A_log, const uint16_t *dt_bias, float *state,
                               uint16_t *o, int64_t B, int64_t H, int64_t HV, int64_t K, int64_t V, int64_t sq,
                               int64_t sk, int64_t sv, int64_t sa, int64_t sb, float scale, int l2norm, int nthreads) {
    if (B <= 0 || H <= 0 || HV % H || K <= 0 || K > MAX_DIM || V <= 0 || V > MAX_DIM || V % 16 || nthreads <= 0)
        return 1;
    const int64_t group = HV / H;
    #pragma omp parallel for schedule(static) num_threads(nthreads)
    for (int64_t bj = 0; bj < B * HV; bj++) {
        const int64_t bi = bj / HV, j = bj % HV, h = j / group;
        float qf[MAX_DIM], kf[MAX_DIM], kS[MAX_DIM], out[MAX_DIM];
        load_normalised(q + bi * sq + h * K, K, l2norm, scale, qf);
        load_normalised(k + bi * sk + h * K, K, l2norm, 1.0f, kf);
        const float x = bf16_to_f32(a[bi * sa + j]) + bf16_to_f32(dt_bias[j]);
        const float softplus = x > 20.0f ? x : log1pf(expf(x));
        const float decay = expf(-expf(bf16_to_f32(A_log[j])) * softplus);
        const float beta = bf16_to_f32(f32_to_bf16(1.0f / (1.0f + expf(-bf16_to_f32(b[bi * sb + j])))));
        float *S = state + bj * K * V;

        const __m512 d = _mm512_set1_ps(decay);
        for (int64_t c = 0; c < V; c += 16) _mm512_storeu_ps(kS + c, _mm512_setzero_ps());
        for (int64_t i = 0; i < K; i++) { /* S *= e^g, kS += k_i S_i */
            const __m512 ki = _mm512_set1_ps(kf[i]);
            for (int64_t c = 0; c < V; c += 16) {
                const __m512 row = _mm512_mul_ps(_mm512_loadu_ps(S + i * V + c), d);
                _mm512_storeu_ps(S + i * V + c, row);
                _mm512_storeu_ps(kS + c, _mm512_fmadd_ps(ki, row, _mm512_loadu_ps(kS + c)));
            }
        }
        const __m512 bt = _mm512_set1_ps(beta);
        for (int64_t c = 0; c < V; c += 16) { /* delta = (v - kS) * beta, kept in kS */
            __m512 vv = _mm512_castsi512_ps(_mm512_slli_epi32(
                _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(v + bi * sv + j * V + c))), 16));
            _mm512_storeu_ps(kS + c, _mm512_mul_ps(_mm512_sub_ps(vv, _mm512_loadu_ps(kS + c)), bt));
            _mm512_storeu_ps(out + c, _mm512_setzero_ps());
        }
        for (int64_t i = 0; i < K; i++) { /* S += k_i delta, o += q_i S_i */
            const __m512 ki = _mm512_set1_ps(kf[i]), qi = _mm512_set1_ps(qf[i]);
            for (int64_t c = 0; c < V; c += 16) {
                const __m512 row = _mm512_fmadd_ps(ki, _mm512_loadu_ps(kS + c), _mm512_loadu_ps(S + i * V + c));
                _mm512_storeu_ps(S + i * V + c, row);
                _mm512_storeu_ps(out + c, _mm512_fmadd_ps(qi, row, _mm512_loadu_ps(out + c)));
            }
        }
        for (int64_t c = 0; c < V; c++) o[bj * V + c] = f32_to_bf16(out[c]);
    }
    return 0;
}

int vl_cpu_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
}
