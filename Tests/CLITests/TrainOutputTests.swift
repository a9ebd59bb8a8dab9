import Foundation
import TestSupport
import XCTest

/// What `gan train` prints.
final class TrainOutputTests: ScratchDirectoryTestCase {
    /// A warning is printed when it happens; the list at the end repeats the ones training went
    /// on past, not one raised after the last step (it would stand twice in a row).
    func testTheClosingListDoesNotRepeatTheLastLinesWarning() throws {
        let data = syntheticIDXDirectory(count: 48, seed: 6)
        // A discriminator that learns fast against a generator that barely moves wins within a
        // few hundred steps on noise images; a 3-step watch then warns.
        func train(_ steps: Int, _ name: String) throws -> Gan.Result {
            try Gan.run(["train", "--model", "mlp", "--dataset", data, "--steps", "\(steps)", "--batch-size", "8",
                         "--lr-d", "0.002", "--lr-g", "1e-7", "--d-win-steps", "3", "--run-dir", dir + "/" + name])
        }
        let long = try train(400, "long")
        XCTAssertEqual(long.status, 0, long.output)
        let warnings = long.stderr.split(separator: "\n").filter { $0.hasPrefix("warning: discriminator loss below") }.map(String.init)
        let first = try XCTUnwrap(warnings.first, "D never won in 400 steps: \(long.stderr.suffix(800))")
        // Raised mid-run: live on stderr and again in the list at the end.
        XCTAssertEqual(long.stdout.components(separatedBy: first).count - 1, 1, long.stdout)
        // The same run stopped at the step that raised it: printed once.
        let range = try XCTUnwrap(first.range(of: #"steps \d+–(\d+)"#, options: .regularExpression), first)
        let lastStep = try XCTUnwrap(Int(first[range].split(separator: "–")[1]), first)
        let short = try train(lastStep, "short")
        XCTAssertEqual(short.status, 0, short.output)
        XCTAssertEqual(short.stderr.components(separatedBy: first).count - 1, 1, short.stderr)
        XCTAssertFalse(short.stdout.contains(first), short.stdout)
    }
}
