// Hands jobs from one calling thread to the engine's worker threads. A worker that has just
// finished spins for a short while before it sleeps, and the caller spins while it waits for
// the workers: a training step of a small model hands over a job every 100-200 µs, and a
// futex sleep and wake-up on each side cost about as much as the job (context switches were
// ~15 per mlp step). After the spin both sides sleep on a condition variable, so an idle pool
// costs nothing.
//
// The caller waits for parts, not for workers: when the workers are slow to wake (another
// process holds the cores) the caller claims their parts itself and goes on, instead of waiting
// for each of them to be scheduled only to find nothing left. With a second training run on the
// same two cores, an mlp step took 17 times as long as alone when the caller waited for every
// worker (see docs/performance-log.md, session 26).
//
// Each worker sets its own spin by what its spins bring. Alone, a job nearly always comes while
// the worker spins (4,604 of 4,653 spins in an mlp run); beside another training run the worker
// is rarely on a core when the job is published, its spins run out (840 of 868) and only take
// time from the threads with work: the mlp trained at half the speed it reached without a spin.
// So a spin that runs out halves the next one and a spin that meets a job restores the full
// length. A worker whose spin has fallen to nothing spins the full length once every
// GAN_PROBE_NS, so it finds out when the cores are free again.
#include "CSupport.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#if defined(__x86_64__)
#include <immintrin.h>
#define GAN_PAUSE() _mm_pause()
#else
#define GAN_PAUSE() ((void)0)
#endif

#define GAN_SPIN_FLOOR_NS 16000L  // a spin shorter than this is no spin
// A probe (one full spin while the worker has none) costs at most 2 % of a core while the cores
// stay busy; once they are free, it restores the spin within 50 ms.
#define GAN_PROBE_NS 50000000L

struct gan_handoff {
    atomic_long generation;   // bumped once per job
    atomic_int finished;      // parts the workers have done and the caller has not yet awaited
    atomic_int sleepers;      // workers asleep on `wake`
    atomic_int caller_asleep; // the caller asleep on `done`
    atomic_int quiet;         // set by gan_handoff_quiesce_all: workers stop spinning
    long spin_ns;             // the full spin
    atomic_int adaptive;      // workers shorten their spin when it runs out
    pthread_mutex_t lock;
    pthread_cond_t wake, done;
};

// The process's pool (the engine has one), for gan_handoff_quiesce_all.
static gan_handoff *_Atomic pool;

static long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)t.tv_sec * 1000000000L + t.tv_nsec;
}

gan_handoff *gan_handoff_create(long spin_ns, int adaptive) {
    gan_handoff *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->spin_ns = spin_ns;
    h->adaptive = adaptive;
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->wake, NULL);
    pthread_cond_init(&h->done, NULL);
    return h;
}

void gan_handoff_register(gan_handoff *h) { atomic_store(&pool, h); }

void gan_handoff_set_adaptive(gan_handoff *h, int adaptive) { atomic_store(&h->adaptive, adaptive); }
int gan_handoff_adaptive(gan_handoff *h) { return atomic_load(&h->adaptive); }

// Spins until `done(h, arg)` or `spin_ns` is over; returns whether it became true.
static int spin_until(gan_handoff *h, long spin_ns, int (*done)(gan_handoff *, long), long arg) {
    if (spin_ns <= 0) return done(h, arg);
    long deadline = now_ns() + spin_ns;
    for (;;) {
        for (int i = 0; i < 64; i++) {
            if (done(h, arg)) return 1;
            GAN_PAUSE();
        }
        if (now_ns() > deadline) return done(h, arg);
    }
}

// A quiesced worker stops spinning (and then sleeps) as if the job had come.
static int generation_moved(gan_handoff *h, long seen) {
    return atomic_load(&h->generation) != seen || atomic_load(&h->quiet);
}
static int parts_finished(gan_handoff *h, long parts) { return atomic_load(&h->finished) >= parts; }

void gan_handoff_worker_init(gan_handoff *h, gan_handoff_worker *w) {
    w->seen = atomic_load(&h->generation);
    w->spin_ns = h->spin_ns;
    w->probe_ns = 0;
}

// How an adaptive worker spins this time: its own spin, or the full one when it is time to probe.
static long worker_spin(gan_handoff *h, gan_handoff_worker *w) {
    if (w->spin_ns > 0 || h->spin_ns <= 0) return w->spin_ns;
    long t = now_ns();
    if (t - w->probe_ns < GAN_PROBE_NS) return 0;
    w->probe_ns = t;
    return h->spin_ns;
}

void gan_handoff_wait(gan_handoff *h, gan_handoff_worker *w) {
    int adaptive = atomic_load(&h->adaptive);
    long seen = w->seen, spin = adaptive ? worker_spin(h, w) : h->spin_ns;
    int came = spin_until(h, spin, generation_moved, seen) && atomic_load(&h->generation) != seen;
    if (adaptive && spin > 0 && !atomic_load(&h->quiet)) {
        if (came) w->spin_ns = h->spin_ns;
        else if ((w->spin_ns /= 2) < GAN_SPIN_FLOOR_NS) w->spin_ns = 0;
    }
    if (atomic_load(&h->generation) == seen) {
        pthread_mutex_lock(&h->lock);
        // Counted before the check: publish() either sees a sleeper or this check sees its job.
        atomic_fetch_add(&h->sleepers, 1);
        while (atomic_load(&h->generation) == seen) pthread_cond_wait(&h->wake, &h->lock);
        atomic_fetch_sub(&h->sleepers, 1);
        pthread_mutex_unlock(&h->lock);
    }
    w->seen = atomic_load(&h->generation);
}

void gan_handoff_publish(gan_handoff *h) {
    atomic_store(&h->quiet, 0);
    atomic_fetch_add(&h->generation, 1);
    if (atomic_load(&h->sleepers) > 0) {
        pthread_mutex_lock(&h->lock);
        pthread_cond_broadcast(&h->wake);
        pthread_mutex_unlock(&h->lock);
    }
}

void gan_handoff_finished(gan_handoff *h, int parts) {
    atomic_fetch_add(&h->finished, parts);
    if (atomic_load(&h->caller_asleep)) {
        pthread_mutex_lock(&h->lock);
        pthread_cond_signal(&h->done);
        pthread_mutex_unlock(&h->lock);
    }
}

// Takes the job's parts off the count instead of zeroing it when the next job is published: a
// worker still awake from this job can claim and report parts of the next one as soon as the
// caller has put it in place, before gan_handoff_publish, and a reset there would lose them.
void gan_handoff_await(gan_handoff *h, int parts) {
    if (!spin_until(h, h->spin_ns, parts_finished, parts)) {
        pthread_mutex_lock(&h->lock);
        atomic_store(&h->caller_asleep, 1);
        while (atomic_load(&h->finished) < parts) pthread_cond_wait(&h->done, &h->lock);
        atomic_store(&h->caller_asleep, 0);
        pthread_mutex_unlock(&h->lock);
    }
    atomic_fetch_sub(&h->finished, parts);
}

void gan_handoff_quiesce_all(void) {
    gan_handoff *h = atomic_load(&pool);
    if (h && !atomic_load(&h->quiet)) atomic_store(&h->quiet, 1);
}
