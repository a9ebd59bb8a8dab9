import Foundation
import TestSupport
import XCTest

/// What `gan train`'s flags put into the run's config.json.
final class TrainFlagTests: ScratchDirectoryTestCase {
    /// One β given keeps the model's other one: mlp-deep's Adam is β (0.9, 0.999), so
    /// `--beta2-g 0.99` must give (0.9, 0.99), not Adam's usual β1 of 0.5.
    func testOneBetaKeepsTheModelsOther() throws {
        let run = dir + "/run"
        let r = try Gan.run(["train", "--model", "mlp-deep", "--dataset", syntheticIDXDirectory(count: 16, seed: 6), "--steps", "1",
                             "--batch-size", "8", "--beta2-g", "0.99", "--beta1-d", "0.7", "--run-dir", run])
        XCTAssertEqual(r.status, 0, r.output)
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: run + "/config.json"))) as? [String: Any]
        let betasG = try XCTUnwrap(config?["betasG"] as? [Double], "\(String(describing: config))")
        let betasD = try XCTUnwrap(config?["betasD"] as? [Double], "\(String(describing: config))")
        XCTAssertEqual(betasG.count, 2)
        XCTAssertEqual(betasD.count, 2)
        XCTAssertEqual(betasG[0], 0.9, accuracy: 1e-6)
        XCTAssertEqual(betasG[1], 0.99, accuracy: 1e-6)
        XCTAssertEqual(betasD[0], 0.7, accuracy: 1e-6)
        XCTAssertEqual(betasD[1], 0.999, accuracy: 1e-6)
    }
}
