#ifndef GAN_CSUPPORT_H
#define GAN_CSUPPORT_H

#include <stddef.h>

/// Sets flush-to-zero and denormals-are-zero on the calling thread (MXCSR on x86, FPCR on arm64).
/// Denormal floats make some GAN runs 1.6-2x slower after a few hundred steps.
void gan_set_flush_denormals(int enabled);

/// 1 when the calling thread flushes denormals to zero.
int gan_flush_denormals_enabled(void);

/// 1 when the CPU supports AVX-512F (used to choose the OpenBLAS core type).
int gan_cpu_has_avx512f(void);

/// 1 when the CPU supports AVX2 and FMA.
int gan_cpu_has_avx2(void);

/// Fixes glibc's mmap threshold at `bytes`, which stops it from rising as mapped chunks are freed;
/// 1 on success, 0 where it cannot be set (not glibc).
int gan_pin_mmap_threshold(int bytes);

/// Marks the calling thread as running one part of a parallel split (kernels and sgemm called
/// on it then stay on it), or clears the mark.
void gan_set_serial(int on);

/// 1 when the calling thread is marked by gan_set_serial.
int gan_is_serial(void);

/// Adds n to the process-wide count of matrix-product and convolution flops (thread-safe).
void gan_flops_add(long long n);

/// The count gan_flops_add has reached.
long long gan_flops_total(void);

/// Uniforms from Philox4x32-10 (RandomGenerator) for counters start … start + 16·groups − 1 under
/// `key`, 64 values per group: out[4i + j] = (word j of block i >> 8) · scale + offset, with AVX-512
/// or AVX2; returns 0, having done nothing, when the CPU has neither.
int gan_uniform_wide(float *out, long groups, unsigned long long start, unsigned long long key, float scale, float offset);

/// Inverted dropout over 64·groups values: with u the uniforms gan_uniform_wide gives for `start`
/// and `key` (scale 2^-24, offset 0), mask[i] = u[i] >= p ? keep : 0 and y[i] = x[i] · mask[i];
/// returns 0, having done nothing, without AVX-512 or AVX2.
int gan_dropout_wide(const float *x, float *y, float *mask, long groups, unsigned long long start, unsigned long long key,
                     float p, float keep);

/// Adam's update (see OptimizerKernels.adam for the order of operations) with AVX-512, or AVX2 +
/// FMA without it, on n values, setting *finite to 1 when every updated value is finite, else 0;
/// returns 0, having done nothing, when the CPU has neither.
int gan_adam_wide(float *p, const float *g, float *m, float *v, long n, float b1, float b2, float eps, float wd,
                  float s, float c, int *finite);

/// The loops below are compiled once per x86 level (SameBitsClones.h); `*_at_level(level)` gives
/// one copy (0 baseline, 1 AVX2 + FMA, 2 AVX-512), NULL when this CPU lacks it, for the tests.
typedef void gan_unary_loop(const float *x, float *y, long n);
typedef void gan_normal_loop(const float *u, float *out, long n, float mean, float std);
gan_unary_loop *gan_sigmoid_at_level(int level);
gan_unary_loop *gan_tanh_at_level(int level);
gan_normal_loop *gan_box_muller_at_level(int level);

/// y = 1 / (1 + e^−x) on n values, within 1e-6 relative of the exact value (Sigmoid.c).
void gan_sigmoid(const float *x, float *y, long n);

/// y = tanh x on n values, within 2 ulp of the exact value (1.5 over every float), tanh(−0) = −0 (Tanh.c).
void gan_tanh(const float *x, float *y, long n);

/// Standard normals by Box–Muller (Normal.c), scaled to mean + std·z: from the uniforms
/// u[2j], u[2j + 1] (each k·2⁻²⁴, as RandomGenerator gives them; 2·⌈n/2⌉ of them), with
/// r = √(−2 ln(u[2j] + 2⁻²⁴)) and t = 2π·u[2j + 1], out[2j] = r·cos t and out[2j + 1] = r·sin t.
/// Within 2e-7·(1 + |z|) of the exact transform; the same bits on every x86 level.
void gan_box_muller(const float *u, float *out, long n, float mean, float std);

/// out[b·length + i] = base[rows[b]·length + i] / divisor + shift for b < count, i < length: rows of
/// bytes gathered by index (a batch of images) and scaled, in that order of operations.
void gan_gather_scaled_bytes(const unsigned char *base, const long *rows, long count, long length, float divisor, float shift,
                             float *out);

/// A job hand-off between one calling thread and its worker threads (Handoff.c): both sides
/// spin up to `spin_ns` before they sleep. A job is a number of parts that any thread may
/// claim; the caller waits for the parts the workers claimed, not for the workers themselves.
/// With `adaptive`, each worker shortens its spin while its spins run out (see gan_handoff_wait).
typedef struct gan_handoff gan_handoff;
gan_handoff *gan_handoff_create(long spin_ns, int adaptive);
/// Makes `h` the process's pool, the one gan_handoff_quiesce_all quiets.
void gan_handoff_register(gan_handoff *h);
/// Turns the workers' adaptive spin on or off (off: every worker spins the full length).
void gan_handoff_set_adaptive(gan_handoff *h, int adaptive);
int gan_handoff_adaptive(gan_handoff *h);
/// A worker's own state: the last job it saw and how long it spins now.
typedef struct {
    long seen;
    long spin_ns;
    long probe_ns;
} gan_handoff_worker;
/// Worker side: starts a worker's state at the full spin, with the current job seen.
void gan_handoff_worker_init(gan_handoff *h, gan_handoff_worker *w);
/// Worker side: returns once a job newer than `w->seen` is published, and records it as seen.
/// Adaptive: a spin that runs out halves the worker's next spin (below 16 µs, to none); one
/// that meets a job restores the full spin; a worker without a spin spins the full length once
/// every 50 ms, to notice when a job would have come.
void gan_handoff_wait(gan_handoff *h, gan_handoff_worker *w);
/// Caller side: starts a new job (the job's data must be in place).
void gan_handoff_publish(gan_handoff *h);
/// Worker side: `parts` parts of the current job are done (a worker that claimed none calls nothing).
void gan_handoff_finished(gan_handoff *h, int parts);
/// Caller side: returns once the workers have reported `parts` parts of the current job done.
void gan_handoff_await(gan_handoff *h, int parts);
/// The process's pool (the one registered): spinning workers go to sleep now, until the next
/// job. Called before other threads, such as oneDNN's OpenMP team, need the cores.
void gan_handoff_quiesce_all(void);

/// The buffer cache behind Engine.BufferCache (sizes are multiples of 64 bytes, buffers at least
/// 64 bytes). A kept buffer of exactly `size` bytes, or NULL when none is kept.
void *gan_buffer_cache_take(size_t size);
/// Keeps `p` (`size` bytes, from posix_memalign) for the next take of that size, or frees it
/// when the kept bytes would pass the capacity.
void gan_buffer_cache_put(void *p, size_t size);
/// Frees every kept buffer; returns the bytes freed.
size_t gan_buffer_cache_release(void);
/// Bytes kept now.
size_t gan_buffer_cache_bytes(void);
/// Most bytes kept: GAN_BUFFER_CACHE_MIB (default 1024) MiB until set.
long long gan_buffer_cache_capacity(void);
/// The capacity a GAN_BUFFER_CACHE_MIB value asks for, in bytes: 1024 MiB when NULL or not a
/// whole number, 0 when negative.
long long gan_buffer_cache_capacity_from(const char *mib);
/// Sets the capacity (negative: 0); when more than that is kept, frees every kept buffer.
void gan_buffer_cache_set_capacity(long long bytes);


/// A span of `gan_trace` (`gan bench train --trace`): what ran (`kind` and four numbers, such as
/// a product's sizes), on which thread (0 is the one that began the recording), from `start` to
/// `end` in nanoseconds of the monotonic clock.
typedef struct {
    long long start, end;
    int kind, thread, a, b, c, d;
} gan_trace_event;

/// 1 while a recording runs: callers test it before reading the clock.
extern int gan_trace_flag;
static inline int gan_trace_recording(void) { return __atomic_load_n(&gan_trace_flag, __ATOMIC_RELAXED); }

/// Starts a recording of up to `capacity` spans (dropping an earlier one); the calling thread is
/// thread 0. 1 when the buffer cannot be allocated.
int gan_trace_begin(long capacity);
/// Stops recording; the spans stay readable until the next begin.
void gan_trace_end(void);
long gan_trace_size(void);
/// Spans that did not fit in the buffer.
long gan_trace_dropped(void);
const gan_trace_event *gan_trace_events(void);
/// Records a span that started at `start` (a `gan_trace_clock` reading) and ends now.
void gan_trace_add(int kind, int a, int b, int c, int d, long long start);
/// Records a span from `start` to `end`.
void gan_trace_add_span(int kind, int a, int b, int c, int d, long long start, long long end);
long long gan_trace_clock(void);
/// The calling thread's index in the current recording.
int gan_trace_thread(void);

#endif
