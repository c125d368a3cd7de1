/* Flush-to-zero / denormals-are-zero for every thread of the OpenMP team PyTorch computes on.
 *
 * torch.set_flush_denormal changes only the calling thread's MXCSR; the intra-op worker threads
 * (libgomp, shared with MKL and oneDNN, which this library links to as well) keep handling
 * subnormals in microcode, ~100x slower per operation on Intel cores. Strongly decaying DeltaNet
 * heads produce such values in the chunked delta rule and the recurrent state.
 */
#include <stdint.h>
#include <xmmintrin.h>
#include <omp.h>

#define FTZ_DAZ 0x8040u /* MXCSR bits 15 (flush to zero) and 6 (denormals are zero) */

/* Sets FTZ/DAZ on `nthreads` team threads (the caller is one of them); each thread's previous two
 * bits go to saved[thread number] (saved holds nthreads entries) for vl_restore_flush_denormals. */
void vl_set_flush_denormals(int nthreads, unsigned *saved) {
    #pragma omp parallel num_threads(nthreads)
    {
        const unsigned csr = _mm_getcsr();
        const int t = omp_get_thread_num();
        if (t < nthreads) saved[t] = csr & FTZ_DAZ;
        _mm_setcsr(csr | FTZ_DAZ);
    }
}

/* Puts back each team thread's FTZ/DAZ bits as vl_set_flush_denormals found them. */
void vl_restore_flush_denormals(int nthreads, const unsigned *saved) {
    #pragma omp parallel num_threads(nthreads)
    {
        const int t = omp_get_thread_num();
        if (t < nthreads) _mm_setcsr((_mm_getcsr() & ~FTZ_DAZ) | saved[t]);
    }
}

/* How many team threads have FTZ/DAZ set (for tests). */
int vl_count_flushing_threads(int nthreads) {
    int count = 0;
    #pragma omp parallel num_threads(nthreads) reduction(+ : count)
    count += (_mm_getcsr() & FTZ_DAZ) == FTZ_DAZ;
    return count;
}

int vl_cpu_supported(void) { return 1; }
