import Datasets
import Engine
import Evaluation
import Foundation
import XCTest

/// Real-data features and floors kept between evaluations: a kept entry gives exactly what
/// computing it again gives, and a damaged or mismatched one is computed again.
final class ReferenceCacheTests: XCTestCase {
    var directory: String!

    override func setUp() { directory = NSTemporaryDirectory() + "gan-reference-cache-\(UUID().uuidString)" }
    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    func testKeptTestFeaturesScoreExactlyAsComputedOnesAndDamageIsRecomputed() throws {
        let bundled = try XCTUnwrap(BundledClassifier.forDataset("mnist"))
        let model = try bundled.load()
        let test = try DatasetStore.load("mnist", split: .test).prefix(600)
        let cache = ReferenceCache(bundled, dataset: "mnist", directory: directory)
        XCTAssertNil(cache.features(count: test.count))
        let computed = Evaluator.forTestSet(test, classifier: model, name: bundled.version, cache: cache)
        let kept = try XCTUnwrap(cache.features(count: test.count), "not stored")
        XCTAssertEqual(kept.scalars, computed.realFeatures.scalars)
        XCTAssertNil(cache.features(count: test.count + 1), "an entry for another count")

        let train = try DatasetStore.load("mnist", split: .train).prefix(300)
        let images = BatchLoader(train, batchSize: train.count, scaling: .unit, shuffle: false).batch(0, order: Array(0..<train.count)).images
        let fromCache = Evaluator.forTestSet(test, classifier: model, name: bundled.version, cache: cache)
        let a = computed.evaluate(images, kidSubsets: 3), b = fromCache.evaluate(images, kidSubsets: 3)
        XCTAssertEqual(a.fd, b.fd)
        XCTAssertEqual(a.kidMean, b.kidMean)
        XCTAssertEqual(a.precision, b.precision)
        XCTAssertEqual(a.recall, b.recall)

        // A truncated entry (a disk filled while another tool wrote it) is computed and kept again.
        let files = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".npy") }
        XCTAssertEqual(files.count, 1, "\(files)")
        let path = directory + "/" + files[0]
        let whole = try Data(contentsOf: URL(fileURLWithPath: path))
        try whole.prefix(whole.count / 2).write(to: URL(fileURLWithPath: path))
        XCTAssertNil(cache.features(count: test.count))
        let again = Evaluator.forTestSet(test, classifier: model, name: bundled.version, cache: cache)
        XCTAssertEqual(again.realFeatures.scalars, computed.realFeatures.scalars)
        XCTAssertEqual(cache.features(count: test.count)?.scalars, computed.realFeatures.scalars)
    }

    func testFloorsRoundTripExactlyAndOnlyForTheirCount() throws {
        let cache = ReferenceCache(key: "k", directory: directory)
        // coverageKL's and kidMean's JSON spellings from Foundation lose their last digit.
        let report = EvaluationReport(fd: 5.378912345678, kidMean: 0.7527037184194865, kidStd: 2.3579, classifierScore: 9.6081,
                                      classifierScoreStd: 0.0712, precision: 0.8801, recall: 0.8876, classesCovered: 10,
                                      coverageKL: 0.0013350262079147453, histogram: [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009],
                                      count: 10_000, classifier: "lenet-mnist-v1")
        XCTAssertNil(cache.floor(samples: 10_000))
        cache.storeFloor(report, samples: 10_000)
        let back = try XCTUnwrap(cache.floor(samples: 10_000))
        XCTAssertEqual([back.fd, back.kidMean, back.kidStd, back.classifierScore, back.classifierScoreStd, back.precision, back.recall, back.coverageKL],
                       [report.fd, report.kidMean, report.kidStd, report.classifierScore, report.classifierScoreStd, report.precision, report.recall, report.coverageKL])
        XCTAssertEqual(back.histogram, report.histogram)
        XCTAssertEqual(back.classesCovered, 10)
        XCTAssertEqual(back.classifier, "lenet-mnist-v1")
        XCTAssertNil(cache.floor(samples: 2_000), "another sample count")
        XCTAssertNil(ReferenceCache(key: "other", directory: directory).floor(samples: 10_000), "another classifier or data set")
        // Not JSON, or JSON without a field: computed again rather than trusted.
        let path = try XCTUnwrap(FileManager.default.contentsOfDirectory(atPath: directory).first { $0.hasSuffix(".json") })
        try Data("{\"fd\": 1".utf8).write(to: URL(fileURLWithPath: directory + "/" + path))
        XCTAssertNil(cache.floor(samples: 10_000))
        var partial = report.json
        partial["kid_std"] = nil
        try JSONSerialization.data(withJSONObject: partial).write(to: URL(fileURLWithPath: directory + "/" + path))
        XCTAssertNil(cache.floor(samples: 10_000))
    }

    func testTheKeyNamesTheClassifiersDigest() {
        let mnist = BundledClassifier.forDataset("mnist")!, fashion = BundledClassifier.forDataset("fashion-mnist")!
        XCTAssertTrue(ReferenceCache(mnist, dataset: "mnist").key.contains(mnist.sha256.prefix(12)))
        XCTAssertNotEqual(ReferenceCache(mnist, dataset: "mnist").key, ReferenceCache(fashion, dataset: "fashion-mnist").key)
    }
}
