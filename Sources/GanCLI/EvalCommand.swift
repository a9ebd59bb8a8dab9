import ArgumentParser
import Datasets
import Engine
import Evaluation
import Foundation
import GAN

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Score samples with the bundled classifier: FD, KID, classifier score, precision/recall, coverage.",
        discussion: """
        Compares against the data set's 10,000 test images. Generated images are
        quantized to uint8 first, as a saved image would be. Without --json a table
        shows, beside each figure, the real-data floor: 10,000 training images scored
        the same way.

        Examples:
          gan eval --checkpoint runs/dcgan/checkpoints/step-00002811.safetensors
          gan eval --samples samples.npy --dataset mnist --json
          gan eval --samples pngs/ --dataset fashion-mnist
        """
    )

    @Option(help: "A gan train checkpoint to draw samples from.") var checkpoint: String?
    @Option(help: "Samples: a uint8 N×28×28 (or float [0,1]) .npy file, or a directory of PNGs.") var samples: String?
    @Option(help: "Samples to draw from --checkpoint.") var count = 10_000
    @Option(help: "Latent seed for --checkpoint.") var seed: UInt64 = 0
    @Flag(help: "Use the EMA generator.") var ema = false
    @Option(help: "mnist or fashion-mnist (default: the checkpoint's, else mnist).") var dataset: String?
    @Option(help: "A classifier checkpoint instead of the bundled one.") var classifier: String?
    @Flag(help: "Print one JSON object.") var json = false
    @Flag(name: .customLong("no-floor"), help: "Skip the real-data floor.") var noFloor = false

    func validate() throws {
        guard (checkpoint == nil) != (samples == nil) else { throw ValidationError("give exactly one of --checkpoint and --samples") }
        guard count >= 2 else { throw ValidationError("--count must be at least 2, got \(count)") }
        if let dataset, !DatasetStore.known.contains(dataset) {
            throw ValidationError("--dataset \(dataset) is not one of \(DatasetStore.known.joined(separator: ", "))")
        }
    }

    func loadSamples(_ path: String) throws -> Tensor {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else { throw FileFormatError(path, "--samples: no such file or directory") }
        if isDir.boolValue {
            let names = try FileManager.default.contentsOfDirectory(atPath: path).filter { $0.hasSuffix(".png") }.sorted()
            guard !names.isEmpty else { throw FileFormatError(path, "--samples: the directory holds no .png files") }
            var values: [Float] = []
            for n in names {
                let img = try PNGImage.readGray(path: path + "/" + n)
                guard img.width == 28 && img.height == 28 else { throw FileFormatError(path + "/" + n, "\(img.width)×\(img.height) pixels, expected 28×28") }
                values += img.pixels.map { Float($0) / 255 }
            }
            return Tensor(shape: [names.count, 1, 28, 28], values)
        }
        let a = try NumpyFile.read(path: path)
        let n = a.shape.first ?? 0
        guard (a.shape.count == 3 && a.shape[1] == 28 && a.shape[2] == 28) || (a.shape.count == 4 && a.shape[1] == 1 && a.shape[2] == 28 && a.shape[3] == 28) else {
            throw FileFormatError(path, "--samples: shape \(a.shape), expected N×28×28 (or N×1×28×28)")
        }
        let values = a.dtype == .uint8 ? a.values.map { $0 / 255 } : a.values
        if a.dtype == .float32, let lo = values.min(), let hi = values.max(), lo < -1e-3 || hi > 1.001 {
            throw FileFormatError(path, "--samples: float values span [\(lo), \(hi)], expected [0, 1]")
        }
        return Tensor(shape: [n, 1, 28, 28], values)
    }

    /// Runs one stage of the evaluation, saying on standard error what it does and how long it
    /// took: at 10,000 samples the whole takes tens of seconds, which a silent prompt hides.
    func stage<R>(_ what: String, _ body: () throws -> R) rethrows -> R {
        FileHandle.standardError.write(Data((what + "… ").utf8))
        let start = Date()
        let result = try body()
        FileHandle.standardError.write(Data(String(format: "%.1f s\n", Date().timeIntervalSince(start)).utf8))
        return result
    }

    func run() throws {
        let log: (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
        var images: Tensor
        var requested: [Int]?
        var datasetName = dataset ?? "mnist"
        if let checkpoint {
            let g = try SavedGenerator(path: checkpoint, ema: ema)
            if dataset == nil, DatasetStore.known.contains(g.config.dataset) { datasetName = g.config.dataset }
            let z = g.drawLatent(count, seed: seed)
            requested = g.spec.conditional ? (0..<count).map { $0 % 10 } : nil
            images = stage("Generating \(count) samples from \(g.spec.name)") { g.unitRange(g.generate(z, labels: requested)) }
            // The generator's kept activation buffers (~120 MB for dcgan) are sizes nothing after
            // this asks for; they sat beside the metrics' distance blocks (peak 529 MiB).
            BufferCache.release()
        } else {
            images = try loadSamples(samples!)
        }
        let model: LeNet
        let name: String
        // Real-data results are kept between runs for the bundled classifiers only: a file given
        // with --classifier may change under the same name.
        var cache: ReferenceCache?
        if let classifier {
            model = try Classifier.load(path: classifier)
            name = (classifier as NSString).lastPathComponent
        } else {
            guard let bundled = BundledClassifier.forDataset(datasetName) else { throw optionError("no bundled classifier for \(datasetName)", command: "eval") }
            model = try bundled.load()
            name = bundled.version
            cache = ReferenceCache(bundled, dataset: datasetName)
        }
        let test = try DatasetStore.load(datasetName, split: .test, log: log)
        let evaluator = stage("Features of the \(test.count) \(datasetName) test images") {
            Evaluator.forTestSet(test, classifier: model, name: name, cache: cache)
        }
        let report = stage("Scoring the \(images.shape[0]) samples") { evaluator.evaluate(images, requestedClasses: requested) }
        var floor: EvaluationReport?
        if !noFloor {
            if let cache, let kept = cache.floor(samples: images.shape[0]) {
                floor = kept
                log("Real-data floor of \(kept.count) training images: kept from an earlier run in \(cache.directory)")
            } else {
                let train = try DatasetStore.load(datasetName, split: .train, log: log)
                let n = min(images.shape[0], train.count)
                var g = RandomGenerator(seed: 1)
                let pick = Array(g.permutation(train.count).prefix(n))
                let computed = stage("Scoring \(n) training images for the real-data floor (kept for next time; --no-floor skips it)") {
                    evaluator.evaluate(BatchLoader(train, batchSize: pick.count, scaling: .unit, shuffle: false).batch(0, order: pick).images)
                }
                cache?.storeFloor(computed, samples: images.shape[0])
                floor = computed
            }
        }
        if json {
            var o = report.json
            o["dataset"] = datasetName
            if let floor { o["real_floor"] = floor.json }
            let data = try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys])
            print(String(data: data, encoding: .utf8)!)
            return
        }
        print("\(report.count) samples vs the \(datasetName) test set; classifier \(name)\n")
        print("metric                 samples                real floor (train vs test)")
        func row(_ label: String, _ a: String, _ b: String?) {
            // `padding(toLength:)` also cuts a longer string: a KID of 212989.87 ± 10752.70 (when it
            // was printed ×1000) showed as "212989.87 ± 10".
            func padded(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
            print(padded(label, 22) + " " + padded(a, 22) + " " + (b ?? "–"))
        }
        row("FD", String(format: "%.3f", report.fd), floor.map { String(format: "%.3f", $0.fd) })
        // KID as it is, like --json and docs/quality.md: the ×1000 of Inception-feature KID made
        // these unnormalized features' values (~10² for early samples) read as ~10⁵.
        row("KID", String(format: "%.3f ± %.3f", report.kidMean, report.kidStd), floor.map { String(format: "%.3f ± %.3f", $0.kidMean, $0.kidStd) })
        row("classifier score", String(format: "%.3f", report.classifierScore), floor.map { String(format: "%.3f", $0.classifierScore) })
        row("precision", String(format: "%.3f", report.precision), floor.map { String(format: "%.3f", $0.precision) })
        row("recall", String(format: "%.3f", report.recall), floor.map { String(format: "%.3f", $0.recall) })
        row("classes ≥ 5 %", "\(report.classesCovered)", floor.map { "\($0.classesCovered)" })
        row("coverage KL", String(format: "%.4f", report.coverageKL), floor.map { String(format: "%.4f", $0.coverageKL) })
        if let a = report.conditionalAccuracy { row("conditional accuracy", String(format: "%.3f", a), nil) }
        if let per = report.fdPerClass {
            print("FD per class: " + per.enumerated().map { "\($0.offset): " + ($0.element.map { String(format: "%.1f", $0) } ?? "–") }.joined(separator: ", "))
        }
        print("\nclass histogram: \(report.histogram)")
    }
}
