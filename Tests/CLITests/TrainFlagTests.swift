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

    /// `--threads` is recorded in config.json and in the checkpoints; a resume on another count
    /// warns that its results will differ from a run that stayed on the first, one on the same
    /// count does not, and a count below 1 or above 256 is refused before anything is written.
    func testThreadCountIsRecordedAndAResumeOnAnotherCountWarns() throws {
        let run = dir + "/run", data = syntheticIDXDirectory(count: 16, seed: 6)
        func train(_ steps: Int, _ extra: [String]) throws -> Gan.Result {
            try Gan.run(["train", "--model", "mlp", "--dataset", data, "--steps", "\(steps)", "--batch-size", "8", "--run-dir", run] + extra)
        }
        let first = try train(2, ["--threads", "3"])
        XCTAssertEqual(first.status, 0, first.output)
        XCTAssertTrue(first.stdout.contains("BLAS, 3 threads"), first.stdout)
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: run + "/config.json"))) as? [String: Any]
        XCTAssertEqual(config?["threads"] as? Int, 3, "\(String(describing: config))")
        let warning = "was trained on 3 threads and now runs on 1"
        let same = try train(3, ["--resume", "--threads", "3"])
        XCTAssertEqual(same.status, 0, same.output)
        XCTAssertFalse(same.stderr.contains("threads and now runs on"), same.stderr)
        let other = try train(4, ["--resume", "--threads", "1"])
        XCTAssertEqual(other.status, 0, other.output)
        XCTAssertTrue(other.stderr.contains(warning) && other.stderr.contains("--threads 3 keeps them identical"), other.stderr)
        XCTAssertTrue(other.stdout.contains("BLAS, 1 thread\n") || other.stdout.hasSuffix("BLAS, 1 thread"), other.stdout)
        let cores = ProcessInfo.processInfo.activeProcessorCount
        XCTAssertEqual(first.stderr.contains("is more than the \(cores) cores here"), 3 > cores, first.stderr)
        XCTAssertFalse(other.stderr.contains("cores here"), other.stderr)

        for (count, message) in [("0", "--threads must be positive, got 0"), ("100000", "--threads must be at most 256, got 100000")] {
            let refused = try Gan.run(["train", "--model", "mlp", "--dataset", data, "--steps", "1", "--threads", count, "--run-dir", dir + "/refused"])
            XCTAssertEqual(refused.status, 64, refused.output)
            XCTAssertTrue(refused.stderr.contains(message), refused.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/refused"))
        }
    }
}
