import CSupport
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
        nonisolated(unsafe) let h = gan_handoff_create(100_000)
        XCTAssertTrue(returns(within: 10) {
            gan_handoff_publish(h)
            gan_handoff_await(h, 0)
        }, "the caller waited for a worker that never took part in the job")
    }

    /// A part a worker claimed is waited for, until the worker reports it, across the spin and
    /// into the sleep (spin 1 ms, report after 50 ms).
    func testCallerWaitsForThePartsAWorkerClaimed() {
        nonisolated(unsafe) let h = gan_handoff_create(1_000_000)
        let worker = Thread {
            _ = gan_handoff_wait(h, 0)
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
        nonisolated(unsafe) let h = gan_handoff_create(0)
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
}
