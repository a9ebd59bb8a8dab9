import Engine
import Foundation
import TestSupport
import XCTest

/// `OpTrace` records spans on every thread; `OpTraceReport` charges each thread's time to the
/// innermost span over it and says what thread 0 ran while thread 1 had nothing to do.
final class OpTraceTests: XCTestCase {
    override func tearDown() {
        _ = OpTrace.stop()
    }

    func testReportChargesTheInnermostSpan() {
        func span(_ kind: OpTrace.Kind, _ thread: Int, _ start: Int64, _ end: Int64, _ name: String, flops: Int = 0) -> OpTrace.Event {
            OpTrace.Event(kind: kind, thread: thread, start: start, end: end, name: name, flops: flops)
        }
        // Thread 0: a section over everything, a product, a wait, an activation pass. Thread 1:
        // a part holding a product, then a bare part; idle from 0 to 5, 45 to 60 and 65 to 100.
        let events = [
            span(.section, 0, 0, 100, "S"), span(.product, 0, 10, 40, "P", flops: 3000), span(.wait, 0, 40, 60, "W"),
            span(.activation, 0, 70, 80, "A"),
            span(.part, 1, 5, 45, "part 2 of 2"), span(.product, 1, 5, 40, "Q", flops: 1000), span(.part, 1, 60, 65, "part 2 of 2"),
        ]
        let report = OpTraceReport(events: events, duration: 100, steps: 2)
        func shares(_ thread: Int) -> [String: Double] {
            Dictionary(uniqueKeysWithValues: report.threads.first { $0.thread == thread }!.shares.map { ($0.label, $0.seconds * 1e9 * 2) })
        }
        let expected0: [String: Double] = [OpTrace.Kind.product.label: 30, OpTrace.Kind.wait.label: 20, OpTrace.Kind.activation.label: 10,
                                           OpTrace.Kind.section.label: 40]
        let expected1: [String: Double] = [OpTrace.Kind.product.label: 35, OpTrace.Kind.part.label: 10, "idle (no part to run)": 55]
        for (got, want) in [(shares(0), expected0), (shares(1), expected1)] {
            XCTAssertEqual(Set(got.keys), Set(want.keys))
            for (label, ns) in want { XCTAssertEqual(got[label] ?? -1, ns, accuracy: 1e-6, label) }
        }
        // While thread 1 idled: S over 0–5, 65–70 and 80–100, the wait over 45–60, A over 70–80.
        let idle = Dictionary(uniqueKeysWithValues: report.whileWorkerIdle.map { ($0.name, $0.seconds * 1e9 * 2) })
        XCTAssertEqual(idle.count, 3)
        XCTAssertEqual(idle["S"] ?? -1, 30, accuracy: 1e-6)
        XCTAssertEqual(idle["W"] ?? -1, 15, accuracy: 1e-6)
        XCTAssertEqual(idle["A"] ?? -1, 10, accuracy: 1e-6)
        XCTAssertEqual(report.productFlopsPerStep, 2000)
        XCTAssertEqual(report.productSecondsPerStep * 1e9, 32.5, accuracy: 1e-6)
    }

    func testRecordsEveryProductAndSectionOnItsThread() throws {
        let a = randomTensor([64, 256], seed: 1), b = randomTensor([256, 784], seed: 2)
        let flops0 = ProductFlops.total
        try OpTrace.start()
        OpProfiler.mark("before")
        let c = Tensor.matmul(a, b)
        OpProfiler.mark("after")
        let (events, dropped, _) = OpTrace.stop()
        XCTAssertEqual(c.shape, [64, 784])
        XCTAssertEqual(dropped, 0)
        let products = events.filter { $0.kind == .product }
        XCTAssertEqual(products.reduce(0) { $0 + $1.flops }, ProductFlops.total - flops0, "every product's part is a span")
        XCTAssertEqual(products.reduce(0) { $0 + $1.flops }, 2 * 64 * 256 * 784)
        XCTAssertTrue(products.allSatisfy { $0.backend != nil && $0.name.hasPrefix("sgemm NN ") })
        if Runtime.threads >= 2 {
            // Two parts, each run by whichever thread claimed it (a sleeping worker may leave both to the caller).
            XCTAssertEqual(events.filter { $0.kind == .part }.count, 2)
            XCTAssertEqual(products.count, 2)
            XCTAssertTrue(Set(products.map(\.thread)).isSubset(of: [0, 1]))
        }
        XCTAssertEqual(events.filter { $0.kind == .section }.map(\.name), ["before", "after"])
        XCTAssertTrue(events.allSatisfy { $0.start >= 0 && $0.end >= $0.start })
        // The section "after" spans the product (it runs from "before" to its mark).
        // The graph's op spans its products on thread 0 (it is named when it has run, as
        // OpProfiler charges it), between the two sections.
        let op = events.first { $0.kind == .op && $0.name == "matmul" }!
        XCTAssertTrue(products.filter { $0.thread == 0 }.allSatisfy { $0.start >= op.start && $0.end <= op.end })
        let sections = events.filter { $0.kind == .section }
        XCTAssertEqual(sections[0].end, op.start)
        XCTAssertEqual(op.end, sections[1].start)
        // Nothing is recorded once stopped.
        _ = Tensor.matmul(a, b)
        XCTAssertEqual(OpTrace.stop().events.count, events.count)

        let json = try JSONSerialization.jsonObject(with: OpTraceReport.chromeTrace(events)) as! [String: Any]
        let list = json["traceEvents"] as! [[String: Any]]
        let spans = list.filter { $0["ph"] as? String == "X" }
        XCTAssertEqual(spans.count, events.count)
        XCTAssertTrue(spans.allSatisfy { $0["ts"] is Double && $0["dur"] is Double && $0["tid"] is Int && $0["name"] is String })
        XCTAssertEqual(list.filter { $0["ph"] as? String == "M" }.count, Set(events.map(\.thread)).count, "a name for each thread")
    }
}
