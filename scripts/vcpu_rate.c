// How fast each CPU runs, window by window, with one busy thread pinned to each: whether the
// host slows the two vCPUs together or one at a time (docs/performance-log.md, session 23). A split
// step waits for its slower half, so one vCPU's dip slows a two-thread step while a one-thread
// step on the other vCPU does not see it. Not part of the build. Run:
//   clang -O2 scripts/vcpu_rate.c -o /tmp/vcpu_rate -lpthread && /tmp/vcpu_rate [SECONDS]
// Prints each CPU's rate per 50 ms window as a fraction of its best window, then per CPU the
// median, the slowest window, and the share of windows under 85 % of its best.
#define _GNU_SOURCE
#include <immintrin.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define MAX_CPUS 8
#define MAX_WINDOWS 2000
#define WINDOW_S 0.05

static int windows;
static double rate[MAX_CPUS][MAX_WINDOWS];

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

// Ten independent FMA chains: enough to keep the FMA ports busy on AVX2 CPUs.
__attribute__((target("avx2,fma"))) static void *run(void *arg) {
    long cpu = (long)arg;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET((int)cpu, &set);
    if (pthread_setaffinity_np(pthread_self(), sizeof set, &set) != 0) {
        fprintf(stderr, "cannot pin a thread to CPU %ld\n", cpu);
        exit(1);
    }
    __m256 acc[10], m = _mm256_set1_ps(0.999f), c = _mm256_set1_ps(1e-4f);
    for (int i = 0; i < 10; i++) acc[i] = _mm256_set1_ps((float)i);
    for (int w = 0; w < windows; w++) {
        long rounds = 0;
        double start = now(), elapsed;
        do {
            for (int k = 0; k < 1000; k++)
                for (int i = 0; i < 10; i++) acc[i] = _mm256_fmadd_ps(acc[i], m, c);
            rounds++;
        } while ((elapsed = now() - start) < WINDOW_S);
        rate[cpu][w] = rounds * 1000.0 * 10 * 16 / elapsed / 1e9;  // GFLOP/s
    }
    float sink = 0;
    for (int i = 0; i < 10; i++) sink += acc[i][0];
    if (sink == 1234.5f) printf(" ");  // keeps the chains alive
    return NULL;
}

int main(int argc, char **argv) {
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
        fprintf(stderr, "needs a CPU with AVX2 and FMA\n");
        return 2;
    }
    double seconds = argc > 1 ? atof(argv[1]) : 10;
    windows = (int)(seconds / WINDOW_S);
    if (windows < 1 || windows > MAX_WINDOWS) {
        fprintf(stderr, "SECONDS: between %.2f and %.0f\n", WINDOW_S, MAX_WINDOWS * WINDOW_S);
        return 2;
    }
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus > MAX_CPUS) cpus = MAX_CPUS;
    pthread_t threads[MAX_CPUS];
    for (long c = 0; c < cpus; c++) pthread_create(&threads[c], NULL, run, (void *)c);
    for (long c = 0; c < cpus; c++) pthread_join(threads[c], NULL);

    double best[MAX_CPUS];
    for (long c = 0; c < cpus; c++) {
        best[c] = 0;
        for (int w = 0; w < windows; w++)
            if (rate[c][w] > best[c]) best[c] = rate[c][w];
    }
    printf("window");
    for (long c = 0; c < cpus; c++) printf("  cpu%ld", c);
    printf("\n");
    for (int w = 0; w < windows; w++) {
        printf("%6.2f", w * WINDOW_S);
        for (long c = 0; c < cpus; c++) printf("  %4.2f", rate[c][w] / best[c]);
        printf("\n");
    }
    for (long c = 0; c < cpus; c++) {
        double sorted[MAX_WINDOWS];
        int slow = 0;
        for (int w = 0; w < windows; w++) {
            sorted[w] = rate[c][w] / best[c];
            slow += sorted[w] < 0.85;
        }
        qsort(sorted, (size_t)windows, sizeof(double), by_value);
        printf("cpu%ld: best %.1f GFLOP/s, median %.2f of it, slowest %.2f, under 0.85 in %.1f %% of windows\n", c,
               best[c], sorted[windows / 2], sorted[0], 100.0 * slow / windows);
    }
    // Windows where one CPU is under 0.85 and the other is not: the dips a split step waits on.
    if (cpus >= 2) {
        int alone = 0;
        for (int w = 0; w < windows; w++) {
            int a = rate[0][w] / best[0] < 0.85, b = rate[1][w] / best[1] < 0.85;
            alone += a != b;
        }
        printf("one of cpu0 / cpu1 under 0.85 and the other not: %.1f %% of windows\n", 100.0 * alone / windows);
    }
    return 0;
}
