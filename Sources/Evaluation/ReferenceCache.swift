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
    /// What every entry's name starts with: the data set, the classifier's version and the head
    /// of its digest.
    public let key: String

    /// The entries of the bundled `classifier` on `dataset`, in `$GAN_DATA_DIR/reference-cache`
    /// (else `~/.cache/swift-gan/reference-cache`).
    public init(_ classifier: BundledClassifier, dataset: String, directory: String = DatasetStore.cacheRoot + "/reference-cache") {
        self.init(key: "\(dataset)-\(classifier.version)-\(classifier.sha256.prefix(12))", directory: directory)
    }

    public init(key: String, directory: String) {
        self.key = key
        self.directory = directory
    }

    func path(_ entry: String) -> String { directory + "/" + key + "-" + entry }

    /// Features [count, width] of the test images, or nil when absent, unreadable or of another shape.
    public func features(count: Int, width: Int = 128) -> Tensor? {
        guard let a = try? NumpyFile.read(path: path("test-features-\(count).npy")), a.shape == [count, width],
              a.values.allSatisfy(\.isFinite) else { return nil }
        return Tensor(shape: a.shape, a.values)
    }

    public func storeFeatures(_ features: Tensor) {
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try? NumpyFile.write(features, to: path("test-features-\(features.shape[0]).npy"))
    }

    /// The floor computed for an evaluation of `samples` samples (as many training images, at
    /// most the training set), or nil. Named by the request, so that a kept floor needs no
    /// training set loaded to find it.
    public func floor(samples: Int) -> EvaluationReport? {
        guard let data = try? AtomicFile.read(path("floor-\(samples).json")),
              let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else { return nil }
        return EvaluationReport(json: object)
    }

    public func storeFloor(_ report: EvaluationReport, samples: Int) {
        // Each Double as its shortest exact spelling: JSON numbers come back from Foundation a
        // digit short at times (0.0013350262079147453 as 0.001335026207914745).
        var object = report.json
        for (k, v) in object {
            guard let x = v as? Double else { continue }
            guard x.isFinite else { return }
            object[k] = String(x)
        }
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return }
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try? AtomicFile.write(data, to: path("floor-\(samples).json"))
    }
}

extension Evaluator {
    /// The evaluator of `dataset`'s test set (labels kept, for per-class FD), with `classifier`
    /// named `name`. With a `cache`, the test features come from it when it has them and are
    /// stored there when it does not.
    public static func forTestSet(_ test: ImageDataset, classifier: LeNet, name: String, cache: ReferenceCache?) -> Evaluator {
        let labels = test.labels.map(Int.init)
        if let features = cache?.features(count: test.count) {
            return Evaluator(classifier: classifier, name: name, realFeatures: features, labels: labels)
        }
        let real = BatchLoader(test, batchSize: test.count, scaling: .unit, shuffle: false, dropLast: false)
            .batch(0, order: Array(0..<test.count)).images
        let evaluator = Evaluator(classifier: classifier, name: name, real: real, labels: labels)
        cache?.storeFeatures(evaluator.realFeatures)
        return evaluator
    }
}
