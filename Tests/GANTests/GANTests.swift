import Datasets
import Engine
import Foundation
import GAN
import NN
import TestSupport
import XCTest

final class GANTests: XCTestCase {
    static let dataDir = syntheticIDXDirectory()

    func tinyConfig(_ model: String, loss: String? = nil) -> TrainConfig {
        var c = TrainConfig()
        c.model = model
        c.loss = loss
        c.dataset = GANTests.dataDir
        c.batchSize = 8
        c.steps = 10
        c.seed = 3
        c.filters = 8
        c.blocks = 2
        c.logEvery = 1
        return c
    }

    /// Names of the checkpoint tensors that differ between two trainers (bit for bit).
    func differences(_ a: GANTrainer, _ b: GANTrainer) -> [String] {
        let x = a.checkpoint().file.tensors, y = b.checkpoint().file.tensors
        XCTAssertEqual(Set(x.keys), Set(y.keys))
        return x.keys.sorted().filter { k in x[k]!.scalars.map(\.bitPattern) != y[k]?.scalars.map(\.bitPattern) }
    }

    /// A run interrupted after `cut` steps and resumed from its checkpoint ends bit-identical to
    /// an uninterrupted run: weights, buffers, optimizer moments, and the random streams.
    func checkResume(_ config: TrainConfig, cut: Int) throws {
        let root = NSTemporaryDirectory() + "gan-resume-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let straight = try TrainingRun(config: config, runDirectory: root + "/a", resume: false, log: { _ in })
        _ = try straight.run()

        var first = config
        first.steps = cut
        let part = try TrainingRun(config: first, runDirectory: root + "/b", resume: false, log: { _ in })
        _ = try part.run()
        var rest = config
        rest.steps = config.steps
        let resumed = try TrainingRun(config: rest, runDirectory: root + "/b", resume: true, log: { _ in })
        XCTAssertEqual(resumed.trainer.globalStep, cut)
        _ = try resumed.run()
        XCTAssertEqual(resumed.trainer.globalStep, straight.trainer.globalStep)
        XCTAssertEqual(differences(resumed.trainer, straight.trainer), [], "\(config.model)/\(config.loss ?? "default") resumed at \(cut)")
        XCTAssertEqual(resumed.trainer.checkpoint().metadata["rng.noise"], straight.trainer.checkpoint().metadata["rng.noise"])
        // The metrics of the resumed run are those of the straight one, line for line.
        XCTAssertEqual(try String(contentsOfFile: root + "/b/metrics.csv", encoding: .utf8),
                       try String(contentsOfFile: root + "/a/metrics.csv", encoding: .utf8))
    }

    func testResumeIsBitIdentical() throws {
        // mid-epoch (48 images / 8 = 6 steps an epoch) with dropout in D
        try checkResume(tinyConfig("mlp-deep"), cut: 4)
        // the mlp, whose steps run as a DenseGANStep, with EMA
        var mlp = tinyConfig("mlp")
        mlp.emaDecay = 0.9
        try checkResume(mlp, cut: 3)
        // at an epoch boundary, with batch norm, the gradient penalty and EMA
        var gp = tinyConfig("dcgan-bn", loss: "wgan-gp")
        gp.emaDecay = 0.9
        gp.steps = 8
        try checkResume(gp, cut: 6)
        // conditional, clipping with 5 critic steps
        var clip = tinyConfig("cgan", loss: "wgan-clip")
        clip.steps = 12
        try checkResume(clip, cut: 7)
    }

    /// A run that stops between epochs writes a sample grid of its last step, so that a short
    /// `--steps` run shows its digits; one that ends on an epoch has that epoch's grid only.
    func testRunEndingMidEpochWritesAGridOfItsLastStep() throws {
        let root = NSTemporaryDirectory() + "gan-last-grid-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        var c = tinyConfig("mlp")
        c.steps = 10  // 48 images / 8 = 6 steps an epoch: epoch 1, then 4 steps of epoch 2
        _ = try TrainingRun(config: c, runDirectory: root + "/mid", resume: false, log: { _ in }).run()
        let mid = try FileManager.default.contentsOfDirectory(atPath: root + "/mid/samples").sorted()
        XCTAssertEqual(mid, ["epoch-0001.png", "step-00000010.png"])
        let grid = try PNGImage.readGray(path: root + "/mid/samples/step-00000010.png")
        XCTAssertEqual(grid.width, 8 * 56 + 9 * 2)
        c.steps = 12
        _ = try TrainingRun(config: c, runDirectory: root + "/whole", resume: false, log: { _ in }).run()
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: root + "/whole/samples").sorted(),
                       ["epoch-0001.png", "epoch-0002.png"])
    }

    /// eval.jsonl follows the checkpoints: a resume drops the evaluations past its step (and a
    /// line cut short) and keeps the earlier ones for the FD jump warning; --overwrite deletes it.
    func testEvaluationLogFollowsResumeAndOverwrite() throws {
        let root = NSTemporaryDirectory() + "gan-eval-log-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        let dir = RunDirectory(root + "/run")
        var c = tinyConfig("mlp")
        c.evalEvery = 1
        c.steps = 12  // 6 steps an epoch: evaluations at steps 6 and 12
        func fdOf(_ step: Int) -> Double { step <= 12 ? 100 : 200 }
        let first = try TrainingRun(config: c, runDirectory: dir.path, resume: false, log: { _ in })
        // A metric without a value (NaN) must not make its line unreadable JSON.
        first.evaluator = { [unowned first] _ in ["fd": fdOf(first.trainer.globalStep), "classes_covered": 10, "kid": .nan] }
        XCTAssertEqual(try first.run().warnings, [])
        func steps() throws -> [Int] {
            try String(contentsOfFile: dir.evalJSONL, encoding: .utf8).split(separator: "\n").map { line in
                let o = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
                return (o["step"] as! NSNumber).intValue
            }
        }
        XCTAssertEqual(try steps(), [6, 12])
        // As if a later run had evaluated step 18 and been killed before its checkpoint, mid-line.
        let stale = try String(contentsOfFile: dir.evalJSONL, encoding: .utf8)
            + "{\"epoch\": 3, \"step\": 18, \"samples\": 2000, \"fd_2000\": 1.0, \"classes_covered_2000\": 10.0}\n{\"epoch\": 4, \"st"
        try stale.write(toFile: dir.evalJSONL, atomically: true, encoding: .utf8)
        c.steps = 18
        let resumed = try TrainingRun(config: c, runDirectory: dir.path, resume: true, log: { _ in })
        XCTAssertEqual(try steps(), [6, 12])
        resumed.evaluator = { [unowned resumed] _ in ["fd": fdOf(resumed.trainer.globalStep), "classes_covered": 10] }
        let summary = try resumed.run()
        XCTAssertEqual(try steps(), [6, 12, 18])
        // FD 200 at step 18 against 100 before the resume: the jump is seen across it.
        XCTAssertEqual(summary.warnings.filter { $0.contains("FD on 2,000 samples jumped") }.count, 1, "\(summary.warnings)")
        XCTAssertTrue(FileManager.default.fileExists(atPath: dir.fdPlot))
        _ = try TrainingRun(config: c, runDirectory: dir.path, resume: false, overwrite: true, log: { _ in })
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.evalJSONL))
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.fdPlot))
    }

    /// What SIGINT/SIGTERM do (set the stop flag): the step in progress finishes, a checkpoint
    /// is written at that step, and resuming from it matches an uninterrupted run.
    func testInterruptionSavesAResumableCheckpoint() throws {
        let root = NSTemporaryDirectory() + "gan-interrupt-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root); StopSignals.reset() }
        let config = tinyConfig("mlp-deep")
        let straight = try TrainingRun(config: config, runDirectory: root + "/a", resume: false, log: { _ in })
        _ = try straight.run()
        let run = try TrainingRun(config: config, runDirectory: root + "/b", resume: false, log: { _ in })
        let summary = try run.run { m in if m.step == 3 { StopSignals.request() } }
        StopSignals.reset()
        XCTAssertTrue(summary.interrupted)
        XCTAssertEqual(summary.steps, 3)
        XCTAssertEqual(RunDirectory(root + "/b").latestCheckpoint.map { ($0 as NSString).lastPathComponent }, "step-00000003.safetensors")
        let resumed = try TrainingRun(config: config, runDirectory: root + "/b", resume: true, log: { _ in })
        _ = try resumed.run()
        XCTAssertEqual(differences(resumed.trainer, straight.trainer), [])
    }

    func testTrainingWritesItsRunDirectory() throws {
        let root = NSTemporaryDirectory() + "gan-run-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        // What the cache keeps is asserted below: keep its default even when the environment
        // turns it off (GAN_BUFFER_CACHE_MIB=-1, as scripts/sanitize.sh does).
        let capacity = BufferCache.capacity
        BufferCache.capacity = 1 << 30
        defer { BufferCache.capacity = capacity }
        // What earlier tests left kept: without this, "a step keeps" below was theirs (273 MB).
        BufferCache.release()
        // The graph's step, whose buffers the cache keeps (a planned step keeps its own).
        GANTrainer.plansDenseSteps = false
        defer { GANTrainer.plansDenseSteps = true }
        var c = tinyConfig("mlp")
        c.steps = 12
        c.sampleEvery = 5
        c.evalEvery = 1
        var warnings: [String] = []
        let run = try TrainingRun(config: c, runDirectory: root, resume: false, log: { warnings.append($0) })
        var scored: [Int] = []
        var calls = 0
        // The steps' kept buffers are freed for the evaluation (beside its images, the generator's
        // batch outputs, less is kept than after a step), and what it used is freed after it.
        var keptAfterStep: [Int: Int] = [:], keptBesideImages: [Int] = [], imageBytes = 0
        run.evaluator = { images in
            imageBytes = images.count * 4
            keptBesideImages.append(BufferCache.cachedBytes - images.count * 4)
            scored.append(images.shape[0])
            XCTAssertGreaterThanOrEqual(images.min().item, 0)
            calls += 1
            // The second evaluation reports a collapse and a jump, which must be warned about.
            return calls == 1 ? ["fd": 10, "classes_covered": 10] : ["fd": 40, "classes_covered": 3]
        }
        let summary = try run.run { keptAfterStep[$0.step] = BufferCache.cachedBytes }
        XCTAssertEqual(scored, [2000, 2000])
        let kept = keptAfterStep[5]!
        XCTAssertGreaterThan(kept, 0)
        for k in keptBesideImages { XCTAssertLessThan(k, kept / 2) }
        // Step 6 ends epoch 1, whose evaluation runs after that step's report: what it used is not
        // kept after it (its 2,000 images alone are several times what a step keeps; kept, the
        // cache held 20 MB from step 7 on)…
        let keptSequence = "kept after the steps: \(keptAfterStep.sorted { $0.key < $1.key }.map(\.value))"
        XCTAssertLessThan(keptAfterStep[7]!, imageBytes / 2, keptSequence)
        // …and the steps after it reuse what they keep: the cache does not grow step by step.
        XCTAssertEqual(Set((7...11).map { keptAfterStep[$0]! }).count, 1, keptSequence)
        let evalLines = try String(contentsOfFile: root + "/eval.jsonl", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(evalLines.count, 2)
        XCTAssertTrue(evalLines[1].contains("\"fd_2000\": 40.0"), String(evalLines[1]))
        XCTAssertTrue(warnings.contains { $0.contains("FD on 2,000 samples jumped") }, "\(warnings)")
        XCTAssertTrue(warnings.contains { $0.contains("possible mode collapse") }, "\(warnings)")
        XCTAssertEqual(summary.steps, 12)
        // …and reported in the run's summary.
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: root + "/summary.json"))) as! [String: Any]
        let reported = json["warnings"] as? [String] ?? []
        XCTAssertTrue(reported.contains { $0.contains("possible mode collapse") } && reported.contains { $0.contains("jumped") }, "\(reported)")
        XCTAssertEqual(json["batches_per_epoch"] as? Int, 6, "gan plot's epoch axis reads it")
        let fm = FileManager.default
        for f in ["config.json", "metrics.jsonl", "metrics.csv", "summary.json", "progress.png", "plots/losses.png",
                  "plots/d_outputs.png", "plots/fd.png", "samples/epoch-0001.png", "samples/epoch-0002.png", "samples/step-00000005.png"] {
            XCTAssertTrue(fm.fileExists(atPath: root + "/" + f), f)
        }
        XCTAssertEqual(RunDirectory(root).checkpointFiles().count, 3)   // the start, epochs 1 and 2 (steps 0, 6, 12)
        let lines = try String(contentsOfFile: root + "/metrics.csv", encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.count, 13)
        let grid = try PNGImage.readGray(path: root + "/samples/epoch-0001.png")
        XCTAssertEqual(grid.width, 8 * 56 + 9 * 2)
        // Starting again over existing checkpoints needs --resume or --overwrite.
        XCTAssertThrowsError(try TrainingRun(config: c, runDirectory: root, resume: false, log: { _ in })) {
            XCTAssertTrue(String(describing: $0).contains("already holds checkpoints"))
        }
    }

    func testUncreatableRunDirectoryFailsBeforeTraining() {
        // A path under a regular file cannot be created, even by root.
        let file = NSTemporaryDirectory() + "gan-file-\(UUID().uuidString)"
        XCTAssertTrue(FileManager.default.createFile(atPath: file, contents: Data("x".utf8)))
        defer { try? FileManager.default.removeItem(atPath: file) }
        XCTAssertThrowsError(try TrainingRun(config: tinyConfig("mlp"), runDirectory: file + "/run", resume: false, log: { _ in })) {
            XCTAssertTrue(String(describing: $0).contains("cannot create the run directory"), "\($0)")
        }
    }

    func testSamplingIsDeterministicForTheSameCheckpointAndZ() throws {
        let root = NSTemporaryDirectory() + "gan-sample-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: root) }
        var c = tinyConfig("dcgan")
        c.steps = 2
        _ = try TrainingRun(config: c, runDirectory: root, resume: false, log: { _ in }).run()
        let path = RunDirectory(root).latestCheckpoint!
        let a = try SavedGenerator(path: path), b = try SavedGenerator(path: path)
        let z = a.drawLatent(5, seed: 9)
        XCTAssertEqual(z.scalars, b.drawLatent(5, seed: 9).scalars)
        let x = a.generate(z), y = b.generate(z)
        XCTAssertEqual(x.scalars.map(\.bitPattern), y.scalars.map(\.bitPattern))
        XCTAssertEqual(x.shape, [5, 1, 28, 28])
        // Through a .npy file, as `gan sample --z` reads it.
        let zPath = root + "/z.npy"
        try NumpyFile.write(z, to: zPath)
        let read = try NumpyFile.read(path: zPath)
        XCTAssertEqual(a.generate(Tensor(shape: read.shape, read.values)).scalars, x.scalars)
        XCTAssertThrowsError(try SavedGenerator(path: path, ema: true)) { XCTAssertTrue(String(describing: $0).contains("no EMA")) }
    }

    func testLossesAgainstClosedForms() {
        let real = Tensor([0.8, 0.6]).requiringGrad(), fake = Tensor([0.3, 0.1]).requiringGrad()
        func check(_ kind: GANLossKind, d: Double, g: Double, dReal: [Float], dFake: [Float], gFake: [Float]) {
            let loss = GANLoss(kind)
            let dl = loss.discriminator(real: real, fake: fake)
            XCTAssertEqual(Double(dl.item), d, accuracy: 1e-5, "\(kind) D")
            let gr = dl.gradients(wrt: [real, fake])
            assertClose(gr[0], Tensor(dReal), "\(kind) dD/dreal")
            assertClose(gr[1], Tensor(dFake), "\(kind) dD/dfake")
            let gl = loss.generator(fake: fake)
            XCTAssertEqual(Double(gl.item), g, accuracy: 1e-5, "\(kind) G")
            assertClose(gl.gradients(wrt: [fake])[0], Tensor(gFake), "\(kind) dG/dfake")
        }
        let bceD = -(log(0.8) + log(0.6)) / 2 - (log(0.7) + log(0.9)) / 2
        check(.nonsaturating, d: bceD, g: -(log(0.3) + log(0.1)) / 2,
              dReal: [-1 / 0.8 / 2, -1 / 0.6 / 2], dFake: [1 / 0.7 / 2, 1 / 0.9 / 2], gFake: [-1 / 0.3 / 2, -1 / 0.1 / 2])
        check(.minimax, d: bceD, g: (log(0.7) + log(0.9)) / 2,
              dReal: [-1 / 0.8 / 2, -1 / 0.6 / 2], dFake: [1 / 0.7 / 2, 1 / 0.9 / 2], gFake: [-1 / 0.7 / 2, -1 / 0.9 / 2])
        check(.lsgan, d: 0.5 * ((0.04 + 0.16) / 2 + (0.09 + 0.01) / 2), g: 0.5 * (0.49 + 0.81) / 2,
              dReal: [-0.2 / 2, -0.4 / 2], dFake: [0.3 / 2, 0.1 / 2], gFake: [-0.7 / 2, -0.9 / 2])
        check(.wganGP, d: 0.2 - 0.7, g: -0.2, dReal: [-0.5, -0.5], dFake: [0.5, 0.5], gFake: [-0.5, -0.5])
        check(.hinge, d: (0.2 + 0.4) / 2 + (1.3 + 1.1) / 2, g: -0.2, dReal: [-0.5, -0.5], dFake: [0.5, 0.5], gFake: [-0.5, -0.5])
    }

    func testGradientPenaltyMatchesPyTorch() throws {
        let p = "wgan_gp_penalty"
        let names = ["0.weight", "0.bias", "2.weight", "2.bias", "5.weight", "5.bias"]
        let params = try names.map { try Fixtures.get("\(p).param.\($0)").requiringGrad() }
        let geo = ConvGeometry(kernel: 3, stride: 2, padding: 1)
        let critic: (Tensor) -> Tensor = { x in
            var h = Tensor.conv2d(x, weight: params[0], bias: params[1], geo).leakyRelu(0.2)
            h = Tensor.conv2d(h, weight: params[2], bias: params[3], geo).leakyRelu(0.2)
            return Tensor.linear(h.flattened(), weight: params[4], bias: params[5])
        }
        let penalty = try gradientPenalty(real: Fixtures.get("\(p).real"), fake: Fixtures.get("\(p).fake"),
                                          alpha: Fixtures.get("\(p).alpha"), critic: critic)
        assertClose(penalty.reshaped([1]), try Fixtures.get("\(p).penalty"), rtol: 1e-3, "penalty")
        let grads = penalty.gradients(wrt: params)
        for (k, n) in names.enumerated() {
            assertClose(grads[k], try Fixtures.get("\(p).dpenalty.\(n)"), rtol: 1e-3, atol: 1e-5, "dpenalty/d\(n)")
        }
        // The same critic with channels-last activations (flattened in PyTorch's order at the end).
        let last = geo.withChannelsLast(true)
        let channelsLastCritic: (Tensor) -> Tensor = { x in
            var h = Tensor.conv2d(x.permuted([0, 2, 3, 1]), weight: params[0], bias: params[1], last).leakyRelu(0.2)
            h = Tensor.conv2d(h, weight: params[2], bias: params[3], last).leakyRelu(0.2)
            return Tensor.linear(h.permuted([0, 3, 1, 2]).flattened(), weight: params[4], bias: params[5])
        }
        let penaltyNHWC = try gradientPenalty(real: Fixtures.get("\(p).real"), fake: Fixtures.get("\(p).fake"),
                                              alpha: Fixtures.get("\(p).alpha"), critic: channelsLastCritic)
        assertClose(penaltyNHWC.reshaped([1]), try Fixtures.get("\(p).penalty"), rtol: 1e-3, "channels-last penalty")
        for (k, g) in penaltyNHWC.gradients(wrt: params).enumerated() {
            assertClose(g, try Fixtures.get("\(p).dpenalty.\(names[k])"), rtol: 1e-3, atol: 1e-5, "channels-last dpenalty/d\(names[k])")
        }
    }

    /// The dcgan-bn critic (and cdcgan's, whose input has 11 channels) built channels-last
    /// computes what the NCHW one does with the same weights: output, batch-norm running
    /// statistics and the WGAN-GP penalty's parameter gradients (dropout off in both: the two
    /// layouts draw its masks in different orders).
    func testChannelsLastCriticMatchesNCHW() {
        let saved = ModelZoo.channelsLastCritic
        defer { ModelZoo.channelsLastCritic = saved }
        var o = BuildOptions()
        o.filters = 16
        for model in ["dcgan-bn", "cdcgan"] {
            func critic(_ channelsLast: Bool) -> Network {
                ModelZoo.channelsLastCritic = channelsLast
                var g = RandomGenerator(seed: 5)
                let d = ModelZoo.build(ModelZoo.spec(model)!, options: o, generator: &g, random: RandomSource(seed: 0)).1
                XCTAssertEqual(d.channelsLast, channelsLast)
                d.train()
                for case let m as Dropout in d.net.layers { m.eval() }
                return d
            }
            let (a, b) = (critic(true), critic(false))
            let labels: [Int]? = a.isConditional ? [3, 0, 7] : nil
            let real = randomTensor([3, 1, 28, 28], seed: 40), fake = randomTensor([3, 1, 28, 28], seed: 41)
            let alpha = Tensor(shape: [3, 1, 1, 1], [0.2, 0.5, 0.9])
            assertClose(a(real, labels: labels), b(real, labels: labels), rtol: 1e-4, atol: 1e-5, "\(model) output")
            for ((name, x), (_, y)) in zip(a.namedBuffers(), b.namedBuffers()) {
                assertClose(x.value, y.value, rtol: 1e-4, atol: 1e-6, "\(model) buffer \(name)")
            }
            func gradients(_ d: Network) -> [Tensor] {
                let loss = d(fake, labels: labels).mean() - d(real, labels: labels).mean()
                    + gradientPenalty(real: real, fake: fake, alpha: alpha) { d($0, labels: labels) } * 10
                return loss.gradients(wrt: d.parameters.map(\.value))
            }
            let (ga, gb) = (gradients(a), gradients(b))
            XCTAssertEqual(ga.count, gb.count)
            for (k, (name, _)) in a.namedParameters().enumerated() {
                assertClose(ga[k], gb[k], rtol: 2e-3, atol: 1e-4, "\(model) d\(name)")
            }
        }
    }

    /// Laptops have more cores than this machine's two. At 3 and 4 threads (parts of unequal
    /// size, and more parts than this machine's pool has workers) the splits give what one thread
    /// gives, to rounding: products by rows and columns, convolutions by images and on the
    /// implicit-GEMM kernels, the gradient penalty's second order, batch-norm statistics,
    /// elementwise chunks; and so does a whole training step of the mlp, Adam included.
    func testResultsAgreeAcrossThreadCounts() throws {
        defer { Runtime.configure() }
        var o = BuildOptions()
        o.filters = 16
        let real = randomTensor([10, 1, 28, 28], seed: 60), fake = randomTensor([10, 1, 28, 28], seed: 61)
        let alpha = Tensor(shape: [10, 1, 1, 1], (0..<10).map { Float($0) / 10 + 0.05 })
        let z = randomTensor([10, 20], seed: 62), v = randomTensor([10, 1, 28, 28], seed: 63)
        func dcgan(threads: Int) -> [(String, Tensor)] {
            Runtime.configure(threads: threads)
            var g = RandomGenerator(seed: 5)
            let (gen, d) = ModelZoo.build(ModelZoo.spec("dcgan-bn")!, options: o, generator: &g, random: RandomSource(seed: 0))
            gen.train(); d.train()
            for case let m as Dropout in d.net.layers { m.eval() }
            let images = gen(z, labels: nil)
            let gGrads = (images * v).sum().gradients(wrt: gen.parameters.map(\.value))
            let loss = d(fake, labels: nil).mean() - d(real, labels: nil).mean()
                + gradientPenalty(real: real, fake: fake, alpha: alpha) { d($0, labels: nil) } * 10
            let dGrads = loss.gradients(wrt: d.parameters.map(\.value))
            return [("images", images), ("critic loss", loss)]
                + zip(gen.namedParameters().map { "dG/d\($0.0)" }, gGrads).map { ($0, $1) }
                + zip(d.namedParameters().map { "dD/d\($0.0)" }, dGrads).map { ($0, $1) }
        }
        var mlp = tinyConfig("mlp")
        mlp.batchSize = 48
        func mlpStep(threads: Int) throws -> [(String, Tensor)] {
            Runtime.configure(threads: threads)
            let t = try GANTrainer(config: mlp, train: DatasetStore.load(mlp.dataset, split: .train))
            _ = t.step()
            return t.checkpoint().file.tensors.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        }
        // One thread last: a part left unwritten at 3 threads must not find one thread's values
        // in a recycled buffer.
        var runs: [Int: ([(String, Tensor)], [(String, Tensor)])] = [:]
        for threads in [3, 4, 1] {
            runs[threads] = (dcgan(threads: threads), try mlpStep(threads: threads))
            BufferCache.release()
        }
        let (dcgan1, mlp1) = runs[1]!
        for threads in [3, 4] {
            let (dcganMany, mlpMany) = runs[threads]!
            for ((name, a), (_, b)) in zip(dcganMany, dcgan1) {
                assertClose(a, b, rtol: 2e-3, atol: 1e-4, "dcgan-bn at \(threads) threads: \(name)")
            }
            XCTAssertEqual(mlpMany.map(\.0), mlp1.map(\.0))
            // Adam's first update is ±lr where a gradient is near 0, whichever way rounding took it.
            for ((name, a), (_, b)) in zip(mlpMany, mlp1) {
                assertClose(a, b, rtol: 1e-3, atol: 5e-4, "mlp step at \(threads) threads: \(name)")
            }
        }
    }

    /// A dense model's planned step (`DenseGANStep`: no graph, each layer's Adam update as soon
    /// as its gradients are ready) trains what the graph's step trains, bit for bit: weights,
    /// Adam's moments and every metric, over two epochs, with each cross-entropy loss, label
    /// smoothing, two critic steps per generator step, an EMA of the generator, and a batch
    /// whose products split over the threads. Models it does not run fall back to the graph.
    func testPlannedDenseStepMatchesTheGraph() throws {
        defer { GANTrainer.plansDenseSteps = true }
        let data = try DatasetStore.load(GANTests.dataDir, split: .train)
        for (loss, smoothing, nCritic, batch, ema) in [("nonsaturating", Float(0), 1, 8, nil), ("minimax", 0.1, 2, 24, Float(0.9))] {
            var c = tinyConfig("mlp", loss: loss)
            c.labelSmoothing = smoothing
            c.nCritic = nCritic
            c.batchSize = batch
            c.emaDecay = ema
            c.steps = 96 / batch
            func train(planned: Bool) throws -> (GANTrainer, [StepMetrics]) {
                GANTrainer.plansDenseSteps = planned
                let t = try GANTrainer(config: c, train: data)
                let metrics = (0..<c.steps!).map { _ in t.step() }
                XCTAssertEqual(t.lastStepWasPlanned, planned, loss)
                return (t, metrics)
            }
            let (planned, pm) = try train(planned: true)
            let (graph, gm) = try train(planned: false)
            XCTAssertEqual(differences(planned, graph), [], "\(loss), batch \(batch)")
            XCTAssertNotEqual(planned.generator.parameters[0].value.scalars,
                              try GANTrainer(config: c, train: data).generator.parameters[0].value.scalars, "the weights moved")
            func fields(_ m: StepMetrics) -> [UInt32?] {
                [m.dLoss, m.gLoss, m.dReal, m.dFake, m.accReal, m.accFake].map { $0?.bitPattern }
            }
            XCTAssertEqual(pm.map(fields), gm.map(fields), "\(loss), batch \(batch)")
            XCTAssertEqual(pm.compactMap(\.gLoss).count, c.steps! / nCritic)
        }
        // A NaN weight is caught in the step it spoils, and named as the graph's step names it.
        var names: [String?] = []
        for planned in [true, false] {
            GANTrainer.plansDenseSteps = planned
            let t = try GANTrainer(config: tinyConfig("mlp"), train: data)
            _ = t.step()
            let p = t.generator.parameters[4]
            var v = p.value.detached()
            v.withUnsafeMutableBufferPointer { $0[5] = .nan }
            p.assign(v)
            names.append(t.step().nonFinite)
            XCTAssertEqual(t.lastStepWasPlanned, planned)
        }
        XCTAssertNotNil(names[0])
        XCTAssertEqual(names[0], names[1])
        GANTrainer.plansDenseSteps = true
        for (model, loss) in [("mlp-deep", nil), ("mlp", "lsgan"), ("dcgan", nil)] as [(String, String?)] {
            var c = tinyConfig(model, loss: loss)
            c.steps = 1
            let t = try GANTrainer(config: c, train: data)
            _ = t.step()
            XCTAssertFalse(t.lastStepWasPlanned, "\(model) \(loss ?? "")")
        }
    }

    /// The generators of dcgan, dcgan-bn and cdcgan built channels-last (where the implicit-GEMM
    /// kernels run their transposed convolutions; forced on here where the CPU has AVX2, so that
    /// they are tested on AVX-512 hosts too) compute what the NCHW ones do with the same weights:
    /// NCHW images out, batch norm's running statistics, the parameters' gradients of a loss on
    /// the images, and the images without a graph (where NCHW runs oneDNN's convolution chain and
    /// channels-last writes each activation over its input).
    func testChannelsLastGeneratorMatchesNCHW() {
        let (saved, savedDCGAN, savedGemm) = (ModelZoo.channelsLastGenerator, ModelZoo.channelsLastDCGANGenerator,
                                              Runtime.implicitGemmConvolutions)
        defer {
            (ModelZoo.channelsLastGenerator, ModelZoo.channelsLastDCGANGenerator, Runtime.implicitGemmConvolutions) =
                (saved, savedDCGAN, savedGemm)
        }
        if Runtime.cpuHasAVX2 && Runtime.usesOneDNN { Runtime.implicitGemmConvolutions = 2 }
        for model in ["dcgan", "dcgan-bn", "cdcgan"] {
            let spec = ModelZoo.spec(model)!
            func generator(_ channelsLast: Bool) -> Network {
                ModelZoo.channelsLastGenerator = channelsLast
                ModelZoo.channelsLastDCGANGenerator = channelsLast
                var g = RandomGenerator(seed: 9)
                let net = ModelZoo.build(spec, options: BuildOptions(), generator: &g, random: RandomSource(seed: 0)).0
                XCTAssertEqual(net.channelsLastOutput, channelsLast, model)
                net.train()
                return net
            }
            let (a, b) = (generator(true), generator(false))
            let z = randomTensor([3, spec.latentDim], seed: 60)
            let labels: [Int]? = a.isConditional ? [4, 1, 9] : nil
            let calls = Runtime.implicitGemmCalls
            let (ya, yb) = (a(z, labels: labels), b(z, labels: labels))
            XCTAssertEqual(ya.shape, [3, 1, 28, 28], model)
            assertClose(ya, yb, rtol: 1e-4, atol: 1e-5, "\(model) generator output")
            if Runtime.implicitGemmActive { XCTAssertGreaterThan(Runtime.implicitGemmCalls, calls, "\(model): the kernels ran") }
            for ((name, x), (_, y)) in zip(a.namedBuffers(), b.namedBuffers()) {
                assertClose(x.value, y.value, rtol: 1e-4, atol: 1e-6, "\(model) buffer \(name)")
            }
            let v = randomTensor([3, 1, 28, 28], seed: 61)
            let ga = (ya * v).sum().gradients(wrt: a.parameters.map(\.value))
            let gb = (yb * v).sum().gradients(wrt: b.parameters.map(\.value))
            XCTAssertEqual(ga.count, gb.count, model)
            for (k, (name, _)) in a.namedParameters().enumerated() {
                // Batch norm over 3 samples makes gradients up to ~100 from cancelling terms: the
                // layouts' different summation orders differ by up to ~1.3e-5 of the largest
                // (NCHW on oneDNN and on unfold + sgemm by up to ~3.5e-6).
                let largest = gb[k].abs().scalars.max()!
                XCTAssertGreaterThan(largest, 0, "\(model) d\(name) trivially zero")
                assertClose(ga[k], gb[k], rtol: 2e-3, atol: Swift.max(1e-4, 3e-5 * largest), "\(model) generator d\(name)")
            }
            a.eval()
            b.eval()
            assertClose(a.inBatches(z, labels: labels, batch: 2), withoutGrad { b(z, labels: labels) }, rtol: 1e-4, atol: 1e-5,
                        "\(model) generator output without a graph")
            // Switched back, the same network is NCHW again.
            a.setChannelsLastGenerator(false)
            assertClose(a(z, labels: labels), withoutGrad { b(z, labels: labels) }, rtol: 1e-4, atol: 1e-5, "\(model) switched back to NCHW")
        }
    }

    /// The trainer joins real and fake into one discriminator call when every layer is per-sample:
    /// the joined call must give each half's outputs and the loss's gradients of two calls, and
    /// layers that look across the batch (batch norm, minibatch std-dev) or keep state per call
    /// (spectral norm's power iteration) must keep the two calls apart.
    func testJoinedDiscriminatorBatchMatchesTwoCalls() {
        func critic(_ model: String, _ edit: (inout BuildOptions) -> Void = { _ in }) -> Network {
            var o = BuildOptions()
            o.filters = 8
            edit(&o)
            var g = RandomGenerator(seed: 9)
            return ModelZoo.build(ModelZoo.spec(model)!, options: o, generator: &g, random: RandomSource(seed: 0)).1
        }
        XCTAssertFalse(critic("dcgan-bn").isPerSample, "batch norm")
        XCTAssertFalse(critic("mlp") { $0.spectralNorm = true }.isPerSample, "spectral norm")
        XCTAssertFalse(critic("dcgan") { $0.minibatchStdDev = true }.isPerSample, "minibatch std-dev")
        for model in ["mlp", "cgan", "dcgan"] {
            let d = critic(model)
            XCTAssertTrue(d.isPerSample, model)
            for case let m as Dropout in d.net.layers { m.eval() }
            let labels: [Int]? = d.isConditional ? [3, 0, 7] : nil
            let real = randomTensor([3, 1, 28, 28], seed: 50), fake = randomTensor([3, 1, 28, 28], seed: 51)
            let joined = d(Tensor.concat([real, fake], axis: 0), labels: labels.map { $0 + $0 })
            let (r, f) = (d(real, labels: labels), d(fake, labels: labels))
            assertClose(joined.sliced(axis: 0, 0..<3), r, rtol: 1e-5, atol: 1e-6, "\(model) real half")
            assertClose(joined.sliced(axis: 0, 3..<6), f, rtol: 1e-5, atol: 1e-6, "\(model) fake half")
            let loss = GANLoss(.nonsaturating)
            let params = d.parameters.map(\.value)
            let g1 = loss.discriminator(real: joined.sliced(axis: 0, 0..<3), fake: joined.sliced(axis: 0, 3..<6)).gradients(wrt: params)
            let g2 = loss.discriminator(real: r, fake: f).gradients(wrt: params)
            for (k, (name, _)) in d.namedParameters().enumerated() {
                assertClose(g1[k], g2[k], rtol: 1e-4, atol: 1e-6, "\(model) d\(name)")
            }
        }
    }

    func testGeneratingInBatchesMatchesOneCall() {
        // cdcgan: batch norm (eval mode: per sample) and labels that must follow their samples.
        var o = BuildOptions()
        o.filters = 8
        var g = RandomGenerator(seed: 4)
        let spec = ModelZoo.spec("cdcgan")!
        let gen = ModelZoo.build(spec, options: o, generator: &g, random: RandomSource(seed: 0)).0
        // Running statistics away from their initial 0 / 1, so that eval mode is not the identity.
        gen.train()
        _ = withoutGrad { gen(randomTensor([16, spec.latentDim], seed: 60), labels: (0..<16).map { $0 % 10 }) }
        gen.eval()
        let z = randomTensor([7, spec.latentDim], seed: 61)
        let labels = [4, 1, 9, 0, 7, 7, 2]
        let whole = withoutGrad { gen(z, labels: labels) }
        for batch in [1, 3, 7, 50] {
            let parts = gen.inBatches(z, labels: labels, batch: batch)
            XCTAssertEqual(parts.shape, [7, 1, 28, 28])
            assertClose(parts, whole, rtol: 1e-5, atol: 1e-6, "batch \(batch)")
        }
        // Another class for one sample changes that sample only.
        var other = labels
        other[5] = 3
        let changed = gen.inBatches(z, labels: other, batch: 3)
        let diff = zip(changed.sliced(axis: 0, 5..<6).scalars, whole.sliced(axis: 0, 5..<6).scalars).map { abs($0 - $1) }.max() ?? 0
        XCTAssertGreaterThan(diff, 1e-4, "sample 5 with another class")
        assertClose(changed.sliced(axis: 0, 0..<5), whole.sliced(axis: 0, 0..<5), rtol: 1e-5, atol: 1e-6, "other samples")
    }

    func testModelsHaveTheTutorialShapes() {
        var g = RandomGenerator(seed: 0)
        let expect: [String: (Int, Int)] = ["mlp": (293_136, 54_465), "dcgan": (1_459_201, 41_729), "dcgan-bn": (804_832, 1_039_489)]
        for (name, counts) in expect {
            var o = BuildOptions()
            o.probabilityOutput = name != "dcgan-bn"
            let (gen, dis) = ModelZoo.build(ModelZoo.spec(name)!, options: o, generator: &g, random: RandomSource(seed: 0))
            // Trainable parameter counts from the PyTorch/TensorFlow reference scripts.
            XCTAssertEqual(gen.parameterCount, counts.0, "\(name) G")
            XCTAssertEqual(dis.parameterCount, counts.1, "\(name) D")
            // `parameters` (optimizers' order) is `namedParameters` (checkpoints' order) without the names.
            for m in [gen, dis] {
                XCTAssertEqual(m.parameters.map(ObjectIdentifier.init), m.namedParameters().map { ObjectIdentifier($0.1) }, name)
            }
            XCTAssertEqual(withoutGrad { gen(Tensor.zeros([2, ModelZoo.spec(name)!.latentDim])) }.shape, [2, 1, 28, 28])
        }
    }

    func testPNGRoundTripAndDistancesAndSlerp() throws {
        let path = NSTemporaryDirectory() + "gan-\(UUID().uuidString).png"
        defer { try? FileManager.default.removeItem(atPath: path) }
        let images = Tensor(shape: [2, 1, 2, 2], [0, 0.5, 1, 0.25, 1, 1, 0, 0])
        try PNGImage.grid(images, range: (0, 1), columns: 2, padding: 0).write(to: path)
        let back = try PNGImage.readGray(path: path)
        XCTAssertEqual([back.width, back.height], [4, 2])
        XCTAssertEqual(back.pixels, [0, 128, 255, 255, 255, 64, 0, 0])
        XCTAssertThrowsError(try PNGImage.readGray(path: "/nonexistent.png"))

        let d = Distances.parallelLines(theta: 0.5)
        XCTAssertEqual(d.tv, 1, accuracy: 1e-12)
        XCTAssertTrue(d.kl.isInfinite)
        XCTAssertEqual(d.js, log(2), accuracy: 1e-12)
        XCTAssertEqual(d.em, 0.5)
        let same = Distances.parallelLines(theta: 0)
        XCTAssertEqual([same.tv, same.kl, same.js, same.em], [0, 0, 0, 0])
        XCTAssertEqual(Distances.earthMover([1, 0, 0], [0, 0, 1], points: [0, 1, 3]), 3, accuracy: 1e-12)

        let a = Tensor([1, 0]), b = Tensor([0, 2])
        XCTAssertEqual(slerp(a, b, 0).scalars, a.scalars)
        assertClose(slerp(a, b, 1), b, "slerp end")
        // 90° apart: halfway is sin(45°)/sin(90°) of each end.
        assertClose(slerp(a, b, 0.5), Tensor([Float(0.5).squareRoot(), 2 * Float(0.5).squareRoot()]), "slerp middle")
    }

    /// The op profiler over whole training steps (`gan bench train --profile`): the trainer's
    /// sections once a step, and the mlp's nine forward products a step (three in G, three in D on
    /// the joined real and fake batch, three in D for G's loss), each a dense layer with its
    /// activation as one op; a step that stopped joining the batch would show twelve.
    func testProfileOfTrainingStepsNamesTheSectionsAndCountsTheProducts() throws {
        defer { GANTrainer.plansDenseSteps = true }
        for planned in [false, true] {
            GANTrainer.plansDenseSteps = planned
            let config = tinyConfig("mlp")
            let t = try GANTrainer(config: config, train: DatasetStore.load(config.dataset, split: .train))
            _ = t.step()
            OpProfiler.start()
            for _ in 0..<3 { _ = t.step() }
            let rows = OpProfiler.stop()
            func calls(_ phase: OpProfiler.Phase, _ name: String) -> Int? { rows.first { $0.phase == phase && $0.name == name }?.calls }
            let sections = planned ? ["G forward (planned)", "D step (planned)", "G step (planned)"]
                : ["D optimizer", "G optimizer", "step end"]
            for section in ["data batch", "latent z", "metrics"] + sections {
                XCTAssertEqual(calls(.section, section), 3, section)
            }
            if planned {
                // No graph: the layers' passes are not ops, and nothing runs backward.
                XCTAssertNil(calls(.forward, "linearLeakyRelu"))
                XCTAssertFalse(rows.contains { $0.phase == .backward })
                continue
            }
            XCTAssertEqual((calls(.forward, "linearLeakyRelu") ?? 0) + (calls(.forward, "linearSigmoid") ?? 0), 27)
            XCTAssertNil(calls(.forward, "matmul"))
            XCTAssertEqual(calls(.forward, "concat"), 3)
        }
    }
}
