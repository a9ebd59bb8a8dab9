import CSupport
import Engine
import Foundation
import XCTest

/// The hand-off between the engine's calling thread and its workers waits for the parts the
/// workers claimed, never for a worker that claimed none: when another process holds the cores,
/// a worker can wake long after the caller has run every part itself.
final class HandoffTests: XCTestCase {
    /// Runs `body` on its own thread; true if it returned within `seconds`.
    func returns(within seconds: Double, _ body: @escaping @Sendable () -> Void) -> Bool {
        let done = DispatchSemaphore(value: 0)
        let t = Thread { body(); done.signal() }
        t.start()
        return done.wait(timeout: .now() + seconds) == .success
    }

    /// A pool whose worker never wakes: the caller ran both parts, so it waits for none.
    func testCallerDoesNotWaitForAWorkerThatClaimedNoPart() {
        nonisolated(unsafe) let h = gan_handoff_create(100_000, 1)
        XCTAssertTrue(returns(within: 10) {
            gan_handoff_publish(h)
            gan_handoff_await(h, 0)
        }, "the caller waited for a worker that never took part in the job")
    }

    /// A part a worker claimed is waited for, until the worker reports it, across the spin and
    /// into the sleep (spin 1 ms, report after 50 ms).
    func testCallerWaitsForThePartsAWorkerClaimed() {
        nonisolated(unsafe) let h = gan_handoff_create(1_000_000, 1)
        let worker = Thread {
            var w = gan_handoff_worker()
            w.seen = 0
            gan_handoff_wait(h, &w)
            usleep(50_000)
            gan_handoff_finished(h, 1)
        }
        worker.start()
        let start = Date()
        XCTAssertTrue(returns(within: 10) {
            gan_handoff_publish(h)
            gan_handoff_await(h, 1)
        })
        XCTAssertGreaterThan(Date().timeIntervalSince(start), 0.04, "the caller returned before the worker's part was done")
    }

    /// A worker still awake from the last job can claim parts of the next as soon as the caller
    /// has put it in place, and report them before the caller publishes it: those reports count
    /// (zeroing the count at publish lost them, and a two-part mlp step hung), and only for
    /// that job: the next one waits for its own.
    func testPartsReportedBeforeTheJobIsPublishedCountForThatJobOnly() {
        nonisolated(unsafe) let h = gan_handoff_create(0, 1)
        XCTAssertTrue(returns(within: 10) {
            gan_handoff_finished(h, 2)
            gan_handoff_publish(h)
            gan_handoff_await(h, 2)
        }, "parts reported before the job was published were lost")

        gan_handoff_publish(h)
        let next = DispatchSemaphore(value: 0)
        Thread { gan_handoff_await(h, 1); next.signal() }.start()
        XCTAssertEqual(next.wait(timeout: .now() + 0.2), .timedOut, "the next job took the last job's parts as its own")
        gan_handoff_finished(h, 1)
        XCTAssertEqual(next.wait(timeout: .now() + 10), .success)
    }

    // MARK: the worker's own spin

    /// Runs one `gan_handoff_wait` of worker state `w` on its own thread; the job is published
    /// `after` seconds after the worker is about to wait (0: before it waits). Returns the state.
    func wait(_ h: OpaquePointer?, _ w: gan_handoff_worker, publishAfter after: Double) -> gan_handoff_worker {
        nonisolated(unsafe) let h = h
        nonisolated(unsafe) var w = w
        let ready = DispatchSemaphore(value: 0), done = DispatchSemaphore(value: 0)
        if after == 0 { gan_handoff_publish(h) }
        Thread {
            ready.signal()
            gan_handoff_wait(h, &w)
            done.signal()
        }.start()
        ready.wait()
        if after > 0 {
            usleep(useconds_t(after * 1e6))
            gan_handoff_publish(h)
        }
        XCTAssertEqual(done.wait(timeout: .now() + 10), .success, "the worker did not see the job")
        return w
    }

    func monotonicNanoseconds() -> Int {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return t.tv_sec * 1_000_000_000 + t.tv_nsec
    }

    /// Beside another process the worker is seldom on a core when a job comes, and its spins
    /// only take time from the threads with work: each spin that runs out halves the next, and a
    /// spin that meets a job (as nearly all do alone) restores the full one.
    func testASpinThatRunsOutHalvesTheNextAndOneThatMeetsAJobRestoresIt() {
        let h = gan_handoff_create(2_000_000, 1)
        var w = gan_handoff_worker()
        gan_handoff_worker_init(h, &w)
        XCTAssertEqual(w.spin_ns, 2_000_000)
        w = wait(h, w, publishAfter: 0.1)
        XCTAssertEqual(w.spin_ns, 1_000_000, "a 2 ms spin ran out 100 ms before the job")
        w = wait(h, w, publishAfter: 0.1)
        XCTAssertEqual(w.spin_ns, 500_000)
        w = wait(h, w, publishAfter: 0)
        XCTAssertEqual(w.spin_ns, 2_000_000, "the job came while the worker spun")

        // Without adaptation the spin stays whatever happens.
        let fixed = gan_handoff_create(2_000_000, 0)
        var v = gan_handoff_worker()
        gan_handoff_worker_init(fixed, &v)
        v = wait(fixed, v, publishAfter: 0.1)
        XCTAssertEqual(v.spin_ns, 2_000_000)
        gan_handoff_set_adaptive(fixed, 1)
        v = wait(fixed, v, publishAfter: 0.1)
        XCTAssertEqual(v.spin_ns, 1_000_000, "adaptation switched on")
    }

    /// A spin below 16 µs is dropped, and a worker without a spin sleeps until the job, except
    /// once every 50 ms when it spins the full length to see whether a job comes meanwhile.
    func testASpinTooShortStopsAndAWorkerWithoutOneProbes() {
        let h = gan_handoff_create(1_000_000_000, 1)
        var w = gan_handoff_worker()
        gan_handoff_worker_init(h, &w)
        w.spin_ns = 20_000
        w = wait(h, w, publishAfter: 0.05)
        XCTAssertEqual(w.spin_ns, 0, "a 10 µs spin is no spin")

        // The last probe "now" (dated ahead, so that it stays recent however late the thread starts).
        w.probe_ns = monotonicNanoseconds() + 10_000_000_000
        w = wait(h, w, publishAfter: 0.01)
        XCTAssertEqual(w.spin_ns, 0, "probed again within 50 ms of the last probe")

        w.probe_ns = monotonicNanoseconds() - 100_000_000
        let before = monotonicNanoseconds()
        w = wait(h, w, publishAfter: 0.01)
        XCTAssertEqual(w.spin_ns, 1_000_000_000, "the probe's full spin met the job")
        XCTAssertGreaterThanOrEqual(w.probe_ns, before, "the probe's time was not recorded")
    }

    /// `gan bench train --json` says how the engine's pool spun (`worker_spin`), and
    /// `--alternate adaptive-spin` switches the process's pool.
    func testTheEnginesPoolReportsAndSwitchesItsSpin() throws {
        let initial = Runtime.adaptsWorkerSpin
        defer { Runtime.adaptsWorkerSpin = initial }
        try XCTSkipIf(["no workers", "no spin"].contains(Runtime.workerSpin), "the pool does not spin here: \(Runtime.workerSpin)")
        Runtime.adaptsWorkerSpin = true
        XCTAssertTrue(Runtime.workerSpin.hasSuffix("µs, adaptive"), Runtime.workerSpin)
        Runtime.adaptsWorkerSpin = false
        XCTAssertTrue(Runtime.workerSpin.hasSuffix("µs, fixed"), Runtime.workerSpin)
        XCTAssertFalse(Runtime.adaptsWorkerSpin)
    }
}
