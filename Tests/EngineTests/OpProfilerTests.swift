import Dispatch
import Engine
import Foundation
import TestSupport
import XCTest

/// `OpProfiler` charges each op, gradient rule and named section with the time since the previous
/// one, on the thread that started the profile: the counts say what ran, and the rows add up to
/// that thread's time.
final class OpProfilerTests: XCTestCase {
    override func tearDown() {
        OpProfiler.stop()
    }

    func row(_ rows: [OpProfiler.Row], _ phase: OpProfiler.Phase, _ name: String) -> OpProfiler.Row? {
        rows.first { $0.phase == phase && $0.name == name }
    }

    func testCountsEachOpRuleAndSectionInItsPhase() {
        let x = randomTensor([64, 48], seed: 1).requiringGrad(), w = randomTensor([48, 32], seed: 2).requiringGrad()
        OpProfiler.start()
        for _ in 0..<3 {
            let loss = Tensor.matmul(x, w).relu().sum()
            loss.backward()
            OpProfiler.mark("after backward")
        }
        let rows = OpProfiler.stop()
        for name in ["matmul", "relu", "sum"] {
            XCTAssertEqual(row(rows, .forward, name)?.calls, 3, "forward \(name)")
            // The rule runs once a backward; ops it runs itself are charged as backward rows too.
            XCTAssertGreaterThanOrEqual(row(rows, .backward, name)?.calls ?? 0, 3, "backward \(name)")
        }
        XCTAssertEqual(row(rows, .backward, "leaf .grad")?.calls, 3)
        XCTAssertEqual(row(rows, .section, "after backward")?.calls, 3)
        XCTAssertNil(row(rows, .section, "matmul"))
        XCTAssertEqual(rows.map(\.seconds), rows.map(\.seconds).sorted(by: >), "longest first")
        XCTAssertTrue(rows.allSatisfy { $0.seconds >= 0 })
    }

    /// Each charge runs from the previous one, so the rows add up to the time from start to the
    /// last charge: nothing is lost or counted twice.
    func testRowsAddUpToTheTimeBetweenStartAndTheLastCharge() {
        let a = randomTensor([256, 256], seed: 3), b = randomTensor([256, 256], seed: 4)
        let t0 = DispatchTime.now().uptimeNanoseconds
        OpProfiler.start()
        var c = a
        for _ in 0..<20 { c = Tensor.matmul(c, b) * 0.01 }
        OpProfiler.mark("end")
        let t1 = DispatchTime.now().uptimeNanoseconds
        let rows = OpProfiler.stop()
        let charged = rows.reduce(0) { $0 + $1.seconds }, wall = Double(t1 - t0) * 1e-9
        XCTAssertEqual(row(rows, .forward, "matmul")?.calls, 20)
        XCTAssertEqual(row(rows, .forward, "affine")?.calls, 20)
        XCTAssertLessThanOrEqual(charged, wall)
        // Only the calls to start() and to the clock after the last mark lie outside the rows.
        XCTAssertGreaterThan(charged, wall - 0.002, "charged \(charged) s of \(wall) s")
    }

    func testIgnoresOtherThreadsAndRunsOnlyBetweenStartAndStop() {
        let x = randomTensor([8, 8], seed: 5)
        _ = x.tanh()
        XCTAssertEqual(OpProfiler.stop(), [], "no profile running")
        OpProfiler.start()
        _ = x.sigmoid()
        let done = DispatchSemaphore(value: 0)
        Thread {
            _ = x.tanh()
            OpProfiler.mark("from another thread")
            done.signal()
        }.start()
        done.wait()
        let rows = OpProfiler.stop()
        _ = x.sigmoid()
        XCTAssertEqual(rows.map { "\($0.phase.rawValue) \($0.name) \($0.calls)" }, ["forward sigmoid 1"])
        XCTAssertEqual(OpProfiler.stop(), [])
    }
}
