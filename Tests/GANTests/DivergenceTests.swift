import Engine
import Foundation
import GAN
import NN
import XCTest

/// NaN and Inf are caught in the step where they appear, and training rolls back (learning
/// rates halved) or stops, as `onDivergence` says.
final class DivergenceTests: XCTestCase {
    func config(_ policy: String = "rollback") -> TrainConfig {
        var c = TrainConfig()
        c.model = "mlp"
        c.dataset = GANTests.dataDir
        c.batchSize = 8
        c.steps = 12          // two epochs of 6
        c.seed = 9
        c.logEvery = 1
        c.onDivergence = policy
        return c
    }

    func tempDir() -> String { NSTemporaryDirectory() + "gan-diverge-\(UUID().uuidString)" }

    /// Sets one element of the first parameter's gradient (or value) to `value`.
    static func poison(_ net: Network, gradient: Bool, value: Float = .nan) {
        let p = net.parameters[0]
        if gradient {
            var g = p.grad!
            g.withUnsafeMutableBufferPointer { $0[3] = value }
            p.value.grad = g
        } else {
            var v = p.value.detached()
            v.withUnsafeMutableBufferPointer { $0[3] = value }
            p.assign(v)
        }
    }

    func allFinite(_ t: GANTrainer) -> Bool {
        (t.generator.parameters + t.discriminator.parameters).allSatisfy { $0.value.isAllFinite }
    }

    func testIsAllFiniteFindsEveryKindOfNonFiniteValue() {
        for n in [1, 15, 16, 17, 100] {
            for bad in [Float.nan, .infinity, -.infinity] {
                for at in Set([0, n / 2, n - 1]) {
                    var t = Tensor((0..<n).map { Float($0) * 1e30 })   // large but finite
                    XCTAssertTrue(t.isAllFinite)
                    t.withUnsafeMutableBufferPointer { $0[at] = bad }
                    XCTAssertFalse(t.isAllFinite, "n \(n), \(bad) at \(at)")
                }
            }
        }
        XCTAssertTrue(Tensor([Float.greatestFiniteMagnitude, -Float.greatestFiniteMagnitude, Float.leastNonzeroMagnitude]).isAllFinite)
    }

    func testPoisonedGradientIsCaughtInItsStepAndRolledBackWithHalvedRates() throws {
        let root = tempDir()
        defer { try? FileManager.default.removeItem(atPath: root) }
        var lines: [String] = []
        let run = try TrainingRun(config: config(), runDirectory: root, resume: false, log: { lines.append($0) })
        let base = run.trainer.learningRates
        var poisoned = false
        run.trainer.afterBackward = { [unowned run] net, step in
            if step == 8 && net === run.trainer.discriminator && !poisoned {
                poisoned = true
                DivergenceTests.poison(net, gradient: true)
            }
        }
        var seen: [Int] = []
        let summary = try run.run { seen.append($0.step) }
        XCTAssertTrue(lines.contains { $0.hasPrefix("Non-finite value at step 8: gradient of discriminator.") }, "\(lines)")
        XCTAssertEqual(summary.rollbacks, 1)
        XCTAssertNil(summary.divergedAt)
        XCTAssertEqual(summary.steps, 12)
        // Back to the epoch-1 checkpoint (step 6), then on to the end with half the rates.
        XCTAssertTrue(summary.warnings.contains { $0.hasPrefix("rolled back to step 6") }, "\(summary.warnings)")
        XCTAssertEqual(seen, Array(1...7) + Array(7...12))
        XCTAssertEqual(run.trainer.learningRates.g, base.g * 0.5)
        XCTAssertEqual(run.trainer.learningRates.d, base.d * 0.5)
        XCTAssertTrue(allFinite(run.trainer))
        // The metrics hold each step once, in order; the rollback's scale is in the checkpoint.
        let csv = try String(contentsOfFile: root + "/metrics.csv", encoding: .utf8).split(separator: "\n").dropFirst()
        XCTAssertEqual(csv.map { Int($0.prefix { $0 != "," })! }, Array(1...12))
        let ck = try Checkpoint.read(path: RunDirectory(root).latestCheckpoint!)
        XCTAssertEqual(ck.metadata["learning_rate_scale"], "0.5")
        XCTAssertEqual(ck.metadata["rollbacks"], "1")
        let resumed = try TrainingRun(config: config(), runDirectory: root, resume: true, log: { _ in })
        XCTAssertEqual(resumed.trainer.learningRates.d, base.d * 0.5)
    }

    func testPoisonedWeightIsNamed() throws {
        let root = tempDir()
        defer { try? FileManager.default.removeItem(atPath: root) }
        var c = config("stop")
        c.steps = 6
        var lines: [String] = []
        let run = try TrainingRun(config: c, runDirectory: root, resume: false, log: { lines.append($0) })
        run.trainer.afterBackward = { [unowned run] net, step in
            if step == 2 && net === run.trainer.generator { DivergenceTests.poison(net, gradient: false, value: .infinity) }
        }
        let summary = try run.run()
        XCTAssertEqual(summary.divergedAt, 2)
        XCTAssertEqual(summary.nonFinite, "generator." + run.trainer.generator.namedParameters()[0].0)
        XCTAssertTrue(lines.contains { $0.hasPrefix("Non-finite value at step 2: generator.") }, "\(lines)")
    }

    func testStopPolicyKeepsTheLastGoodCheckpointAndSaysWhere() throws {
        let root = tempDir()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let run = try TrainingRun(config: config("stop"), runDirectory: root, resume: false, log: { _ in })
        run.trainer.afterBackward = { [unowned run] net, step in
            if step == 9 && net === run.trainer.discriminator { DivergenceTests.poison(net, gradient: true, value: -.infinity) }
        }
        let summary = try run.run()
        XCTAssertEqual(summary.divergedAt, 9)
        XCTAssertEqual(summary.rollbacks, 0)
        // Nothing of the diverged state was saved: the newest checkpoint is epoch 1's, and finite.
        let dir = RunDirectory(root)
        XCTAssertEqual(dir.latestCheckpoint.map { ($0 as NSString).lastPathComponent }, "step-00000006.safetensors")
        let ck = try Checkpoint.read(path: dir.latestCheckpoint!)
        XCTAssertTrue(ck.file.tensors.values.allSatisfy(\.isAllFinite))
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir.summary))) as! [String: Any]
        XCTAssertEqual(json["diverged_at_step"] as? Int, 9)
        XCTAssertTrue((json["non_finite"] as? String)?.hasPrefix("gradient of discriminator.") ?? false)
    }

    func testRepeatedDivergenceStopsAfterThreeRollbacks() throws {
        let root = tempDir()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let run = try TrainingRun(config: config(), runDirectory: root, resume: false, log: { _ in })
        // Every pass through step 3 diverges, whatever the learning rate.
        run.trainer.afterBackward = { [unowned run] net, step in
            if step == 3 && net === run.trainer.discriminator { DivergenceTests.poison(net, gradient: true) }
        }
        let summary = try run.run()
        XCTAssertEqual(summary.rollbacks, 3)
        XCTAssertEqual(summary.divergedAt, 3)
        XCTAssertEqual(run.trainer.learningRateScale, 0.125)
        XCTAssertEqual(summary.warnings.filter { $0.hasPrefix("rolled back to step 0") }.count, 3, "\(summary.warnings)")
        XCTAssertTrue(summary.warnings.last!.contains("after 3 rollback(s)"))
    }

    func testDiscriminatorWinIsReportedOncePerStreak() {
        var w = DiscriminatorWatch(steps: 3)
        let losses: [Float] = [0.5, 0.005, 0.001, 0.002, 0.001, 0.0, 0.3, 0.001, 0.001, 0.001]
        let reports = losses.enumerated().compactMap { i, l in w.observe(step: i + 1, dLoss: l).map { (i + 1, $0) } }
        XCTAssertEqual(reports.map(\.0), [4, 10])
        XCTAssertTrue(reports[0].1.contains("steps 2–4"), reports[0].1)
    }
}
