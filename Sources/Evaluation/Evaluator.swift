import Crypto
import Datasets
import Engine
import Foundation
import NN

/// A bundled, versioned classifier: the LeNet trained by `gan classifier train` with a fixed
/// seed, committed under `Sources/Evaluation/Classifiers/`, checked against its SHA-256.
public struct BundledClassifier {
    public let dataset: String
    public let version: String
    public let sha256: String
    public let testAccuracy: Double
    public let command: String

    public static let all: [BundledClassifier] = [
        BundledClassifier(dataset: "mnist", version: "lenet-mnist-v1",
                          sha256: "c98fd5c341791f0ca2f88030304991b23ed1c2a2bda463d2d9b302a14ba85645", testAccuracy: 0.9930,
                          command: "gan classifier train --dataset mnist --epochs 5 --seed 0"),
        BundledClassifier(dataset: "fashion-mnist", version: "lenet-fashion-mnist-v1",
                          sha256: "2148feb33965a49a8239a1466d22118e6b416e51f506ab4731fc99fad327897e", testAccuracy: 0.9041,
                          command: "gan classifier train --dataset fashion-mnist --epochs 5 --seed 0"),
    ]

    public static func forDataset(_ name: String) -> BundledClassifier? { all.first { $0.dataset == name } }

    public var fileName: String { "\(version).safetensors" }

    /// The file inside the package's resources.
    public var path: String? { Bundle.module.path(forResource: version, ofType: "safetensors", inDirectory: "Classifiers") }

    /// Loads the classifier after checking the file's digest.
    public func load() throws -> LeNet {
        guard let path else { throw FileFormatError(fileName, "the bundled classifier is missing from the package resources") }
        let data = try AtomicFile.read(path)
        let digest = SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
        guard digest == sha256 else {
            throw FileFormatError(path, "SHA-256 \(digest) does not match the expected \(sha256) for \(version)")
        }
        return try Classifier.load(path: path)
    }
}

public enum Classifier {
    /// A LeNet checkpoint written by `gan classifier train`.
    public static func load(path: String) throws -> LeNet {
        let ck = try Checkpoint.read(path: path)
        let classes = Int(ck.metadata["classes"] ?? "10") ?? 10
        let model = LeNet(classes: classes, random: RandomSource(seed: 0))
        try ck.load(into: model, from: "model")
        model.eval()
        return model
    }

    /// Penultimate features [N, 128] and class probabilities of images [N, 1, 28, 28] in [0, 1].
    /// `batch` 200: at 500 the activations took ~190 MB (the peak of `gan train`'s set-up), at
    /// 100 ~40 MB, and `gan eval` ran as fast at 200 as at 500.
    public static func embed(_ model: LeNet, _ images: Tensor, batch: Int = 200) -> (features: Tensor, probabilities: [[Double]]) {
        model.eval()
        var feats: [Tensor] = []
        var probs: [[Double]] = []
        var start = 0
        while start < images.shape[0] {
            let end = Swift.min(start + batch, images.shape[0])
            let x = images.sliced(axis: 0, start..<end)
            withoutGrad {
                let f = model.penultimate(x)
                feats.append(f)
                let p = model.head.layers[4](f).softmax(axis: 1)
                let c = p.shape[1]
                let v = p.scalars
                for i in 0..<(end - start) { probs.append((0..<c).map { Double(v[i * c + $0]) }) }
            }
            start = end
        }
        return (Tensor.concat(feats, axis: 0), probs)
    }
}

/// All metrics of one set of samples against the test set.
public struct EvaluationReport: Sendable {
    public var fd: Double
    public var kidMean: Double, kidStd: Double
    public var classifierScore: Double, classifierScoreStd: Double
    public var precision: Double, recall: Double
    public var classesCovered: Int
    public var coverageKL: Double
    public var histogram: [Int]
    public var count: Int
    public var classifier: String
    /// For conditional models: accuracy of the classifier against the requested classes.
    public var conditionalAccuracy: Double?
    /// For conditional models: FD between the samples requested as class k and the test images
    /// of class k (nil for classes with fewer than two of either).
    public var fdPerClass: [Double?]?

    public var json: [String: Any] {
        var o: [String: Any] = ["fd": fd, "kid_mean": kidMean, "kid_std": kidStd, "classifier_score": classifierScore,
                                "classifier_score_std": classifierScoreStd,
                                "precision": precision, "recall": recall, "classes_covered": classesCovered,
                                "coverage_kl": coverageKL, "count": count, "classifier": classifier, "class_histogram": histogram]
        if let a = conditionalAccuracy { o["conditional_accuracy"] = a }
        if let f = fdPerClass { o["fd_per_class"] = f.map { $0 ?? -1 } }
        return o
    }

    public init(fd: Double, kidMean: Double, kidStd: Double, classifierScore: Double, classifierScoreStd: Double,
                precision: Double, recall: Double, classesCovered: Int, coverageKL: Double, histogram: [Int], count: Int,
                classifier: String) {
        self.fd = fd; self.kidMean = kidMean; self.kidStd = kidStd
        self.classifierScore = classifierScore; self.classifierScoreStd = classifierScoreStd
        self.precision = precision; self.recall = recall; self.classesCovered = classesCovered
        self.coverageKL = coverageKL; self.histogram = histogram; self.count = count; self.classifier = classifier
    }

    /// A report read back from `json` (an unconditional one: without the per-class fields), or
    /// nil when a field is missing or of the wrong type.
    public init?(json o: [String: Any]) {
        // A number, or a Double written as its exact spelling (`ReferenceCache`).
        func number(_ k: String) -> Double? { (o[k] as? String).flatMap(Double.init) ?? (o[k] as? NSNumber)?.doubleValue }
        guard let fd = number("fd"), let kidMean = number("kid_mean"), let kidStd = number("kid_std"),
              let cs = number("classifier_score"), let csStd = number("classifier_score_std"),
              let precision = number("precision"), let recall = number("recall"),
              let covered = (o["classes_covered"] as? NSNumber)?.intValue, let kl = number("coverage_kl"),
              let count = (o["count"] as? NSNumber)?.intValue, let classifier = o["classifier"] as? String,
              let histogram = (o["class_histogram"] as? [NSNumber])?.map(\.intValue) else { return nil }
        self.init(fd: fd, kidMean: kidMean, kidStd: kidStd, classifierScore: cs, classifierScoreStd: csStd,
                  precision: precision, recall: recall, classesCovered: covered, coverageKL: kl, histogram: histogram,
                  count: count, classifier: classifier)
    }
}

public struct Evaluator {
    public let classifier: LeNet
    public let classifierName: String
    /// The test images' features (what `ReferenceCache` keeps).
    public let realFeatures: Tensor
    let realGaussian: Metrics.Gaussian
    let realLabels: [Int]?

    /// `real`: the test images [N, 1, 28, 28] in [0, 1]; `labels` enable per-class FD. Only their
    /// features are kept, not the images (31 MB for MNIST's test set, held through a whole run).
    public init(classifier: LeNet, name: String, real: Tensor, labels: [Int]? = nil) {
        self.init(classifier: classifier, name: name, realFeatures: Classifier.embed(classifier, real).features, labels: labels)
    }

    /// From the test images' features, already computed (`ReferenceCache`).
    public init(classifier: LeNet, name: String, realFeatures: Tensor, labels: [Int]? = nil) {
        self.classifier = classifier
        classifierName = name
        realLabels = labels
        self.realFeatures = realFeatures
        realGaussian = Metrics.Gaussian(features: realFeatures)
    }

    /// Images as a saved PNG would hold them: rounded to 1/255 steps.
    public static func quantized(_ images: Tensor) -> Tensor {
        Tensor(shape: images.shape, images.scalars.map { Float(pixelByte($0)) / 255 })
    }

    /// Metrics of `images` ([N, 1, 28, 28] in [0, 1], quantized first). `kidSubsets` and
    /// `precisionRecall` can be reduced for quick in-training checks.
    public func evaluate(_ images: Tensor, requestedClasses: [Int]? = nil, kidSubsets: Int = 100,
                         withPrecisionRecall: Bool = true) -> EvaluationReport {
        let q = Evaluator.quantized(images)
        let (f, p) = Classifier.embed(classifier, q)
        // The classifier's batch activations are kept by the buffer cache in sizes the distance
        // blocks below (40 MB each at 10,000 samples) do not reuse.
        BufferCache.release()
        let fd = Metrics.frechetDistance(realGaussian, Metrics.Gaussian(features: f))
        let kid = Metrics.kernelDistance(realFeatures, f, subsets: kidSubsets, subsetSize: 1000)
        let cs = Metrics.classifierScore(probabilities: p)
        let pr = withPrecisionRecall ? Metrics.precisionRecall(real: realFeatures, fake: f) : (precision: Double.nan, recall: Double.nan)
        let predictions = p.map { row in row.indices.max { row[$0] < row[$1] }! }
        let cov = Metrics.classCoverage(predictions: predictions, classes: classifier.classes)
        var report = EvaluationReport(fd: fd, kidMean: kid.mean, kidStd: kid.std, classifierScore: cs.mean, classifierScoreStd: cs.std,
                                      precision: pr.precision, recall: pr.recall, classesCovered: cov.covered,
                                      coverageKL: cov.klFromUniform, histogram: cov.histogram, count: images.shape[0],
                                      classifier: classifierName)
        if let requested = requestedClasses {
            report.conditionalAccuracy = Double(zip(predictions, requested).filter { $0 == $1 }.count) / Double(max(requested.count, 1))
            if let realLabels {
                report.fdPerClass = (0..<classifier.classes).map { c in
                    let fake = requested.indices.filter { requested[$0] == c }, real = realLabels.indices.filter { realLabels[$0] == c }
                    guard fake.count >= 2, real.count >= 2 else { return nil }
                    return Metrics.frechetDistance(Metrics.Gaussian(features: realFeatures.indexSelect(real)),
                                                   Metrics.Gaussian(features: f.indexSelect(fake)))
                }
            }
        }
        return report
    }
}
