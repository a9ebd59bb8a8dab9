import Datasets
import Engine
import Evaluation
import Foundation
import XCTest

/// The committed classifiers are the files the code expects and reach the accuracy the docs
/// state (on the full test sets, which this fetches on first use).
final class BundledClassifierTests: XCTestCase {
    func testDigestsAndAccuracyMatchTheDocs() throws {
        for bundled in BundledClassifier.all {
            let model = try bundled.load()   // checks the SHA-256
            let test = try DatasetStore.load(bundled.dataset, split: .test)
            let accuracy = ClassifierTraining.accuracy(model, on: test)
            // Kernels differ slightly between machines (BLAS core type), so allow 10 images.
            XCTAssertEqual(Double(accuracy), bundled.testAccuracy, accuracy: 0.001, bundled.version)
            XCTAssertGreaterThanOrEqual(Double(accuracy), bundled.dataset == "mnist" ? 0.99 : 0.90, bundled.version)
        }
    }

    func testEvaluatorScoresRealDataNearTheFloorAndNoiseFarFromIt() throws {
        let bundled = BundledClassifier.forDataset("mnist")!
        let model = try bundled.load()
        let test = try DatasetStore.load("mnist", split: .test).prefix(2000)
        let train = try DatasetStore.load("mnist", split: .train).prefix(2000)
        let all = { (d: ImageDataset) in BatchLoader(d, batchSize: d.count, scaling: .unit, shuffle: false, dropLast: false).batch(0, order: Array(0..<d.count)).images }
        let evaluator = Evaluator(classifier: model, name: bundled.version, real: all(test), labels: test.labels.map(Int.init))
        let realReport = evaluator.evaluate(all(train), kidSubsets: 10)
        // Real training images "requested" as their true classes: accurate, and each class's FD
        // small; the same images requested as the wrong classes: inaccurate, FD per class large.
        let truth = train.labels.map(Int.init)
        let right = evaluator.evaluate(all(train), requestedClasses: truth, kidSubsets: 2, withPrecisionRecall: false)
        let wrong = evaluator.evaluate(all(train), requestedClasses: truth.map { ($0 + 1) % 10 }, kidSubsets: 2, withPrecisionRecall: false)
        XCTAssertGreaterThan(right.conditionalAccuracy!, 0.97)
        XCTAssertLessThan(wrong.conditionalAccuracy!, 0.03)
        for c in 0..<10 { XCTAssertLessThan(right.fdPerClass![c]! * 5, wrong.fdPerClass![c]!, "class \(c)") }
        var g = RandomGenerator(seed: 1)
        let noise = Tensor.rand([2000, 1, 28, 28], generator: &g)
        let noiseReport = evaluator.evaluate(noise, kidSubsets: 10)
        XCTAssertLessThan(realReport.fd * 20, noiseReport.fd)
        XCTAssertGreaterThan(realReport.classifierScore, 8)
        XCTAssertEqual(realReport.classesCovered, 10)
        XCTAssertGreaterThan(realReport.precision, 0.6)
        XCTAssertGreaterThan(realReport.recall, 0.6)
        // Noise features collapse together: their k-NN balls are tiny, so they cover no real image.
        XCTAssertLessThan(noiseReport.recall, 0.1)
        XCTAssertEqual(realReport.classifier, "lenet-mnist-v1")
    }
}
