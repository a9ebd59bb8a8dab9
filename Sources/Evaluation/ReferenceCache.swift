import Datasets
import Engine
import Foundation

/// What evaluation computes from real data alone, kept on disk between runs (as pytorch-fid and
/// StudioGAN keep their reference statistics): the bundled classifier's features of a data set's
/// test images, and the real-data floor (training against test images) for a sample count.
/// Each entry is named by the classifier's version and digest and by the data set, whose files
/// are checked against their own digests when loaded, so a changed input never meets an old
/// entry. An entry that cannot be read is computed again and rewritten; one that cannot be
/// written is only not kept. Deleting the directory is always safe.
public struct ReferenceCache {
    public let directory: String

    /// `$GAN_DATA_DIR/reference-cache` (else `~/.cache/swift-gan/reference-cache`).
    public init(directory: String = DatasetStore.cacheRoot + "/reference-cache") {
        self.directory = directory
    }

    /// The entry name for `classifier` on `dataset`: its version and the head of its digest.
    public static func key(_ classifier: BundledClassifier, dataset: String) -> String {
        "\(dataset)-\(classifier.version)-\(classifier.sha256.prefix(12))"
    }

    func path(_ name: String) -> String { directory + "/" + name }

    /// Features [count, width] stored under `key`, or nil when absent, unreadable or of another shape.
    public func features(_ key: String, count: Int, width: Int = 128) -> Tensor? {
        guard let a = try? NumpyFile.read(path: path(key + "-test-features-\(count).npy")), a.shape == [count, width],
              a.values.allSatisfy(\.isFinite) else { return nil }
        return Tensor(shape: a.shape, a.values)
    }

    public func storeFeatures(_ features: Tensor, _ key: String) {
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try? NumpyFile.write(features, to: path(key + "-test-features-\(features.shape[0]).npy"))
    }

    /// The floor of `count` training images stored under `key`, or nil.
    public func floor(_ key: String, count: Int) -> EvaluationReport? {
        guard let data = try? AtomicFile.read(path(key + "-floor-\(count).json")),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let report = EvaluationReport(json: object), report.count == count else { return nil }
        return report
    }

    public func storeFloor(_ report: EvaluationReport, _ key: String) {
        // Each Double as its shortest exact spelling: JSON numbers come back from Foundation a
        // digit short at times (0.0013350262079147453 as 0.001335026207914745).
        var object = report.json
        for (k, v) in EvaluationReport.exactFields(report) { object[k] = String(v) }
        guard JSONSerialization.isValidJSONObject(object), report.fd.isFinite, report.kidMean.isFinite,
              let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try? AtomicFile.write(data, to: path(key + "-floor-\(report.count).json"))
    }
}

extension Evaluator {
    /// The evaluator of `dataset`'s test set (labels kept, for per-class FD), with `classifier`
    /// named `name`. With `cacheKey`, the test features come from `cache` when it has them and
    /// are stored there when it does not.
    public static func forTestSet(_ test: ImageDataset, classifier: LeNet, name: String,
                                  cache: ReferenceCache?, cacheKey: String?) -> Evaluator {
        let labels = test.labels.map(Int.init)
        if let cache, let cacheKey, let features = cache.features(cacheKey, count: test.count) {
            return Evaluator(classifier: classifier, name: name, realFeatures: features, labels: labels)
        }
        let real = BatchLoader(test, batchSize: test.count, scaling: .unit, shuffle: false, dropLast: false)
            .batch(0, order: Array(0..<test.count)).images
        let evaluator = Evaluator(classifier: classifier, name: name, real: real, labels: labels)
        if let cache, let cacheKey { cache.storeFeatures(evaluator.referenceFeatures, cacheKey) }
        return evaluator
    }
}
