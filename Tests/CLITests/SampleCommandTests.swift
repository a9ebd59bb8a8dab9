import Foundation
import TestSupport
import XCTest

/// What `gan sample` and `gan interpolate` write from a checkpoint.
final class SampleCommandTests: ScratchDirectoryTestCase {
    /// Without --from and --to the strip runs from seed 0 to seed 1: the same file as with them
    /// given, and another one than seeds 0 → 2.
    func testInterpolateDefaultsToSeedsZeroAndOne() throws {
        let run = dir + "/run"
        let trained = try Gan.run(["train", "--model", "mlp", "--dataset", syntheticIDXDirectory(count: 16, seed: 6), "--steps", "2",
                                   "--batch-size", "8", "--run-dir", run])
        XCTAssertEqual(trained.status, 0, trained.output)
        let checkpoint = run + "/checkpoints/step-00000002.safetensors"
        func strip(_ name: String, _ seeds: [String]) throws -> Data {
            let r = try Gan.run(["interpolate", "--checkpoint", checkpoint, "--out", dir + "/" + name] + seeds)
            XCTAssertEqual(r.status, 0, r.output)
            return try Data(contentsOf: URL(fileURLWithPath: dir + "/" + name))
        }
        let byDefault = try strip("default.png", [])
        XCTAssertEqual(byDefault, try strip("given.png", ["--from", "0", "--to", "1"]))
        XCTAssertNotEqual(byDefault, try strip("other.png", ["--from", "0", "--to", "2"]))
    }
}
