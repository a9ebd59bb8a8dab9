// The machine's fp32 fused multiply-add peak, the ceiling above the sgemm yardstick `gan bench`
// reports: twelve independent AVX-512 (and then AVX2) accumulator chains per thread, on one
// thread and then on every thread given, each chain's result checked against its closed form so
// that the loop cannot have been optimized away. The figures quoted in docs/performance-log.md
// (session 16). Not part of the build. Run:
//   clang -O2 -mavx2 -mfma scripts/fma_peak.c -o /tmp/fma_peak -lpthread -lm && /tmp/fma_peak [THREADS]
#include <immintrin.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define CHAINS 12
#define ROUNDS 100000000L

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

// x ← x·b + c from x₀, ROUNDS times: x = b^R·x₀ + c·(1 − b^R)/(1 − b).
static double expected(double x0, double b, double c) {
    double bn = pow(b, (double)ROUNDS);
    return bn * x0 + c * (1 - bn) / (1 - b);
}

typedef struct { int wide; float result[CHAINS]; } job;

// The AVX-512 chains in a function of their own, compiled for AVX-512 only, so that the program
// builds with plain -mavx2 -mfma and runs on CPUs without AVX-512 (main asks the CPU first).
__attribute__((target("avx512f")))
static void run_wide(job *j) {
    __m512 a[CHAINS], b = _mm512_set1_ps(0.999f), c = _mm512_set1_ps(0.001f);
    for (int i = 0; i < CHAINS; i++) a[i] = _mm512_set1_ps((float)i);
    for (long k = 0; k < ROUNDS; k++)
        for (int i = 0; i < CHAINS; i++) a[i] = _mm512_fmadd_ps(a[i], b, c);
    for (int i = 0; i < CHAINS; i++) j->result[i] = _mm512_reduce_add_ps(a[i]) / 16;
}

static void *run(void *arg) {
    job *j = arg;
    if (j->wide) {
        run_wide(j);
    } else {
        __m256 a[CHAINS], b = _mm256_set1_ps(0.999f), c = _mm256_set1_ps(0.001f);
        for (int i = 0; i < CHAINS; i++) a[i] = _mm256_set1_ps((float)i);
        for (long k = 0; k < ROUNDS; k++)
            for (int i = 0; i < CHAINS; i++) a[i] = _mm256_fmadd_ps(a[i], b, c);
        float lanes[8];
        for (int i = 0; i < CHAINS; i++) {
            _mm256_storeu_ps(lanes, a[i]);
            float s = 0;
            for (int q = 0; q < 8; q++) s += lanes[q];
            j->result[i] = s / 8;
        }
    }
    return NULL;
}

// GFLOP/s of `threads` threads at once; exits non-zero if a chain's value is wrong.
static double measure(int threads, int wide) {
    pthread_t t[64];
    job jobs[64];
    double t0 = now();
    for (int i = 0; i < threads; i++) {
        jobs[i].wide = wide;
        if (pthread_create(&t[i], NULL, run, &jobs[i]) != 0) {
            fprintf(stderr, "could not start thread %d of %d\n", i + 1, threads);
            exit(1);
        }
    }
    for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
    double seconds = now() - t0;
    for (int k = 0; k < CHAINS; k++) {
        double want = expected(k, 0.999f, 0.001f);
        for (int i = 0; i < threads; i++)
            if (fabs(jobs[i].result[k] - want) > 1e-3 * (1 + fabs(want))) {
                fprintf(stderr, "chain %d gave %g, expected %g\n", k, jobs[i].result[k], want);
                exit(1);
            }
    }
    return (double)threads * ROUNDS * CHAINS * 2 * (wide ? 16 : 8) / seconds / 1e9;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    if (threads < 1 || threads > 64) { fprintf(stderr, "threads must be 1-64, got %s\n", argv[1]); return 2; }
    if (__builtin_cpu_supports("avx512f")) {
        printf("AVX-512 FMA, 1 thread: %.1f GFLOP/s\n", measure(1, 1));
        printf("AVX-512 FMA, %d threads: %.1f GFLOP/s\n", threads, measure(threads, 1));
    } else {
        printf("no AVX-512 on this CPU\n");
    }
    printf("AVX2 FMA, 1 thread: %.1f GFLOP/s\n", measure(1, 0));
    printf("AVX2 FMA, %d threads: %.1f GFLOP/s\n", threads, measure(threads, 0));
    return 0;
}
