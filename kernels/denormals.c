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

/* Sets (on != 0) or clears FTZ/DAZ on `nthreads` team threads (the caller is one of them).
 * Returns the caller's previous FTZ/DAZ bits, so a caller can restore them. */
unsigned vl_set_flush_denormals(int on, int nthreads) {
    const unsigned before = _mm_getcsr() & FTZ_DAZ;
    #pragma omp parallel num_threads(nthreads)
    {
        const unsigned csr = _mm_getcsr();
        _mm_setcsr(on ? (csr | FTZ_DAZ) : (csr & ~FTZ_DAZ));
    }
    return before;
}

/* How many team threads have FTZ/DAZ set (for tests). */
int vl_count_flushing_threads(int nthreads) {
    int count = 0;
    #pragma omp parallel num_threads(nthreads) reduction(+ : count)
    count += (_mm_getcsr() & FTZ_DAZ) == FTZ_DAZ;
    return count;
}

int vl_cpu_supported(void) { return 1; }
