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
        nonisolated(unsafe) let h = gan_handoff_create(1, 100_000)
        XCTAssertTrue(returns(within: 10) {
            gan_handoff_publish(h)
            gan_handoff_await(h, 0)
        }, "the caller waited for a worker that never took part in the job")
    }

    /// A part a worker claimed is waited for, until the worker reports it, across the spin and
    /// into the sleep (spin 1 ms, report after 50 ms).
    func testCallerWaitsForThePartsAWorkerClaimed() {
        nonisolated(unsafe) let h = gan_handoff_create(1, 1_000_000)
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
}
