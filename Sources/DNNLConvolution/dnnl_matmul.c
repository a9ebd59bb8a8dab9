#ifdef __linux__
// Small matrix products through oneDNN's matmul (its brgemm kernels). On the mlp's 64-row
// products one thread of it runs 1.05–1.7× OpenBLAS's sgemm (scripts/matmul_compare.c), which
// packs both operands on every call. Session 6 tried oneDNN's matmul with its own OpenMP team
// and lost what it gained to waking the team on every call; here each call runs on the calling
// thread only (the engine splits a product over its own threads, one oneDNN call per part).
//
// oneDNN 2.6 runs its brgemm matmul on dense operands only (a leading dimension wider than the
// matrix gets its slower gemm), and a product split over threads reads a block of columns: such
// an operand is first copied to a dense buffer when it is small (the split's copies are a
// 64-row batch block or output block, a few percent of the product), and a strided C is written
// through one. One primitive per distinct (transposes, sizes), created once (JIT, ~1 ms) and
// kept in a table of TABLE_SIZE; a new shape in a full table replaces, in turn, an entry no thread
// is running (or, if all are running, falls back to sgemm). Primitives are executed
// from several threads at once, so everything per call — stream, memory objects, scratchpad,
// dense copies — is the calling thread's own.
#include "dnnl_matmul.h"
#include "CSupport.h"
#include "grown_buffer.h"
#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

extern int omp_get_max_threads(void);
extern void omp_set_num_threads(int);

#define TABLE_SIZE 64

typedef struct {
    int ta, tb, m, n, k;
} key;

// Operands larger than this are not copied to make them dense (the caller's sgemm takes them).
#define MAX_COPY (1 << 18)

typedef struct {
    int state;  // 0 empty, 1 ready, 2 oneDNN refused the shape
    int running;  // threads executing it now: not to be replaced
    unsigned generation;  // counts the shapes this entry has held: stale memory objects below
    key k;
    dnnl_primitive_t prim;
    dnnl_memory_desc_t a_md, b_md, c_md, scratch_md;
    size_t scratch_bytes;
} product;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static product table[TABLE_SIZE];
static int next_slot;  // where the next new shape goes once the table is full
static dnnl_engine_t engine;
static int engine_state;  // 0 not tried, 1 ready, 2 failed
static atomic_long calls;

long gan_dnnl_sgemm_calls(void) { return atomic_load(&calls); }

static __thread dnnl_stream_t stream;
static __thread gan_buffer scratch, dense[3];  // oneDNN's scratchpad; copies of A, B, C

// Each thread's memory objects (A, B, C, scratchpad) for each table entry, re-pointed at every
// call: creating and destroying four per call cost eight aligned allocations (oneDNN's objects
// go through posix_memalign, which glibc 2.36 serves without its per-thread cache), some
// 200 a step of the mlp. They live as long as the thread (the engine's threads, as long as the
// process): at most four per entry.
typedef struct {
    dnnl_memory_t m[4];
    unsigned generation;
} bound_memory;
static __thread bound_memory bound[TABLE_SIZE];

static void drop_memory(bound_memory *b) {
    for (int i = 0; i < 4; i++) {
        if (b->m[i]) dnnl_memory_destroy(b->m[i]);
        b->m[i] = NULL;
    }
}

// This thread's memory objects for `p` (running, so not rebuilt meanwhile), made on first use
// and after the entry took a new shape; NULL when oneDNN cannot make them.
static dnnl_memory_t *memory_for(const product *p) {
    bound_memory *b = &bound[p - table];
    if (b->m[0] && b->generation == p->generation) return b->m;
    drop_memory(b);
    const dnnl_memory_desc_t *mds[4] = {&p->a_md, &p->b_md, &p->c_md, &p->scratch_md};
    for (int i = 0; i < 4; i++)
        if (dnnl_memory_create(&b->m[i], mds[i], engine, DNNL_MEMORY_NONE) != dnnl_success) {
            drop_memory(b);
            return NULL;
        }
    b->generation = p->generation;
    return b->m;
}

static int build(product *p) {
    const key *k = &p->k;
    dnnl_dims_t a_dims = {k->m, k->k}, b_dims = {k->k, k->n}, c_dims = {k->m, k->n};
    // op(A) is M×K: row-major A, or A stored K×M (its transpose) read down the columns.
    dnnl_dims_t a_strides = {k->ta ? 1 : k->k, k->ta ? k->m : 1};
    dnnl_dims_t b_strides = {k->tb ? 1 : k->n, k->tb ? k->k : 1};
    dnnl_dims_t c_strides = {k->n, 1};
    if (dnnl_memory_desc_init_by_strides(&p->a_md, 2, a_dims, dnnl_f32, a_strides) != dnnl_success ||
        dnnl_memory_desc_init_by_strides(&p->b_md, 2, b_dims, dnnl_f32, b_strides) != dnnl_success ||
        dnnl_memory_desc_init_by_strides(&p->c_md, 2, c_dims, dnnl_f32, c_strides) != dnnl_success) return 1;
    dnnl_matmul_desc_t desc;
    if (dnnl_matmul_desc_init(&desc, &p->a_md, &p->b_md, NULL, &p->c_md) != dnnl_success) return 1;
    dnnl_primitive_attr_t attr;
    if (dnnl_primitive_attr_create(&attr) != dnnl_success) return 1;
    dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t s = dnnl_primitive_desc_create(&pd, &desc, attr, engine, NULL);
    dnnl_primitive_attr_destroy(attr);
    if (s != dnnl_success) return 1;
    // Only the brgemm kernels are worth it where they run (AVX-512); oneDNN's fallbacks there
    // (gemm, ref) are OpenBLAS's or slower. Without AVX-512 there is no brgemm, and its own JIT
    // sgemm (gemm:jit) ran the mlp's products 5-10 % faster than OpenBLAS's Haswell kernel on an
    // AMD EPYC (scripts/matmul_compare.c), the mlp step 1.034 and 1.061 (--alternate dnnl-matmul).
    const char *impl = NULL;
    dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    int brgemm = impl && strncmp(impl, "brg", 3) == 0;
    int jit_gemm = impl && strncmp(impl, "gemm:jit", 8) == 0 && !gan_cpu_has_avx512f();
    int rc = !brgemm && !jit_gemm;
    if (!rc) {
        p->scratch_md = *dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
        p->scratch_bytes = dnnl_memory_desc_get_size(&p->scratch_md);
        rc = dnnl_primitive_create(&p->prim, pd) != dnnl_success;
    }
    dnnl_primitive_desc_destroy(pd);
    return rc;
}

// The table entry for `k`, built on first use and marked running (see `done`); NULL when oneDNN
// refuses the shape or every entry is running. Only after `engine_ready()`.
static product *lookup(const key *k) {
    pthread_mutex_lock(&lock);
    product *found = NULL;
    int empty = -1;
    for (int i = 0; i < TABLE_SIZE && !found; i++) {
        if (table[i].state == 0) { if (empty < 0) empty = i; }
        else if (memcmp(&table[i].k, k, sizeof *k) == 0) found = &table[i];
    }
    if (!found) {
        int slot = empty;
        for (int tries = 0; slot < 0 && tries < TABLE_SIZE; tries++) {
            int i = next_slot;
            next_slot = (next_slot + 1) % TABLE_SIZE;
            if (!table[i].running) slot = i;
        }
        if (slot >= 0) {
            found = &table[slot];
            if (found->prim) dnnl_primitive_destroy(found->prim);
            unsigned generation = found->generation + 1;
            memset(found, 0, sizeof *found);
            found->generation = generation;
            found->k = *k;
            found->state = build(found) ? 2 : 1;
        }
    }
    if (found && found->state == 1) found->running++;
    else found = NULL;
    pthread_mutex_unlock(&lock);
    return found;
}

static int engine_ready(void) {
    pthread_mutex_lock(&lock);
    if (engine_state == 0) engine_state = dnnl_engine_create(&engine, dnnl_cpu, 0) == dnnl_success ? 1 : 2;
    int ready = engine_state == 1;
    pthread_mutex_unlock(&lock);
    return ready;
}

static void done(product *p) {
    pthread_mutex_lock(&lock);
    p->running--;
    pthread_mutex_unlock(&lock);
}

// `rows` rows of `cols` floats at stride `ld`, as a dense matrix: `src` itself when already
// dense, else a copy (when `copy`) in this thread's buffer `slot`; NULL when too large to copy or
// out of memory.
static float *dense_view(int slot, const float *src, int rows, int cols, int ld, int copy) {
    if (ld == cols) return (float *)src;
    size_t count = (size_t)rows * cols;
    float *d = count > MAX_COPY ? NULL : gan_grown(&dense[slot], count * sizeof(float));
    if (d && copy)
        for (int r = 0; r < rows; r++) memcpy(d + (size_t)r * cols, src + (size_t)r * ld, cols * sizeof(float));
    return d;
}

int gan_dnnl_sgemm(int trans_a, int trans_b, int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                   float *c, int ldc) {
    key want = {trans_a != 0, trans_b != 0, m, n, k};
    if (!stream) {
        if (engine_ready() && dnnl_stream_create(&stream, engine, dnnl_stream_default_flags) != dnnl_success) stream = NULL;
        if (!stream) return 1;
    }
    // The primitive first: a shape oneDNN refuses costs no copies on each of its calls.
    product *p = lookup(&want);
    if (!p) return 1;
    const float *da = dense_view(0, a, trans_a ? k : m, trans_a ? m : k, lda, 1);
    const float *db = dense_view(1, b, trans_b ? n : k, trans_b ? k : n, ldb, 1);
    float *dc = dense_view(2, c, m, n, ldc, 0);
    void *sp = gan_grown(&scratch, p->scratch_bytes);
    dnnl_memory_t *mem = da && db && dc && sp ? memory_for(p) : NULL;
    int rc = !mem || dnnl_memory_set_data_handle(mem[0], (void *)da) != dnnl_success ||
             dnnl_memory_set_data_handle(mem[1], (void *)db) != dnnl_success ||
             dnnl_memory_set_data_handle(mem[2], dc) != dnnl_success ||
             dnnl_memory_set_data_handle(mem[3], sp) != dnnl_success;
    if (!rc) {
        // One thread: oneDNN (OpenMP build) would otherwise start a team for this calling thread.
        int threads = omp_get_max_threads();
        if (threads != 1) omp_set_num_threads(1);
        dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, mem[0]}, {DNNL_ARG_WEIGHTS, mem[1]}, {DNNL_ARG_DST, mem[2]}, {DNNL_ARG_SCRATCHPAD, mem[3]}};
        rc = dnnl_primitive_execute(p->prim, stream, 4, args) != dnnl_success || dnnl_stream_wait(stream) != dnnl_success;
        if (threads != 1) omp_set_num_threads(threads);
    }
    done(p);
    if (rc) return rc;
    if (dc != c)
        for (int r = 0; r < m; r++) memcpy(c + (size_t)r * ldc, dc + (size_t)r * n, n * sizeof(float));
    atomic_fetch_add(&calls, 1);
    return 0;
}
#endif
