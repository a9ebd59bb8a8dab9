import Foundation
import TestSupport
import XCTest

/// What `gan train`'s flags put into the run's config.json.
final class TrainFlagTests: XCTestCase {
    var dir: String!

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "gan-flags-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }

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

    /// Options found wrong only once a file is read (a checkpoint's model, a run directory
    /// without checkpoints) exit 64 naming the option and the subcommand's help, not the root
    /// command's "Usage: gan <subcommand>".
    func testOptionsRefusedAfterReadingAFileNameTheSubcommand() throws {
        let run = dir + "/run"
        let trained = try Gan.run(["train", "--model", "mlp", "--dataset", syntheticIDXDirectory(count: 16, seed: 6), "--steps", "1",
                                   "--batch-size", "8", "--run-dir", run])
        XCTAssertEqual(trained.status, 0, trained.output)
        let checkpoint = run + "/checkpoints/step-00000001.safetensors"
        let cases: [([String], String, String)] = [
            (["sample", "--checkpoint", checkpoint, "--class", "3", "--out", dir + "/grid.png"],
             "--class needs a conditional model (cgan, cdcgan); \(checkpoint) holds mlp", "gan sample --help"),
            (["train", "--resume", "--run-dir", dir + "/empty", "--steps", "1"],
             "--resume: \(dir!)/empty holds no checkpoint to resume from", "gan train --help"),
        ]
        for (args, message, help) in cases {
            let r = try Gan.run(args)
            XCTAssertEqual(r.status, 64, "\(args): \(r.output)")
            XCTAssertTrue(r.stderr.contains("Error: " + message), "\(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(help), "\(args): \(r.stderr)")
            XCTAssertFalse(r.stderr.contains("<subcommand>"), "\(args): \(r.stderr)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/grid.png"))
    }
}
