import Foundation
import XCTest

/// `gan distances`: the WGAN paper's table, as a reader sees it.
final class DistancesCommandTests: XCTestCase {
    /// Every value ends where its column's heading ends (an infinite KL was once printed
    /// left-aligned, out of its column), and the values are the closed forms: TV 1, KL ∞,
    /// JS log 2 for θ ≠ 0, all three 0 at θ = 0, EM |θ|.
    func testTableColumnsLineUpAndHoldTheClosedForms() throws {
        let r = try Gan.run(["distances"])
        XCTAssertEqual(r.status, 0, r.output)
        let lines = r.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 8, r.stdout)
        guard let header = lines.first else { return }
        let headings = ["theta", "TV", "KL", "JS", "EM"]
        let columnEnds = try headings.map { h -> Int in
            let range = try XCTUnwrap(header.range(of: h), header)
            return header.distance(from: header.startIndex, to: range.upperBound)
        }
        for line in lines.dropFirst() {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true).map(String.init)
            XCTAssertEqual(fields.count, 5, line)
            guard fields.count == 5 else { continue }
            var searchFrom = line.startIndex
            for (field, end) in zip(fields, columnEnds) {
                let range = try XCTUnwrap(line.range(of: field, range: searchFrom..<line.endIndex), line)
                XCTAssertEqual(line.distance(from: line.startIndex, to: range.upperBound), end, "\(field) in \(line)")
                searchFrom = range.upperBound
            }
            let theta = try XCTUnwrap(Double(fields[0]), line)
            let tv = try XCTUnwrap(Double(fields[1])), kl = try XCTUnwrap(Double(fields[2])),
                js = try XCTUnwrap(Double(fields[3])), em = try XCTUnwrap(Double(fields[4]))
            XCTAssertEqual(em, abs(theta), accuracy: 1e-4, line)
            if theta == 0 {
                XCTAssertEqual([tv, kl, js], [0, 0, 0], line)
            } else {
                XCTAssertEqual(tv, 1, accuracy: 1e-4, line)
                XCTAssertTrue(kl.isInfinite, line)
                XCTAssertEqual(js, log(2), accuracy: 1e-4, line)
            }
        }
    }
}
