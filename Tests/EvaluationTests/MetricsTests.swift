import Engine
import Evaluation
import Foundation
import XCTest

final class MetricsTests: XCTestCase {
    func randomTensor(_ shape: [Int], seed: UInt64) -> Tensor {
        var g = RandomGenerator(seed: seed)
        return Tensor.randn(shape, generator: &g)
    }

    func testFrechetDistanceClosedForms() {
        let x = randomTensor([500, 6], seed: 1)
        let a = Metrics.Gaussian(features: x)
        XCTAssertEqual(Metrics.frechetDistance(a, a), 0, accuracy: 1e-9)
        // Diagonal Gaussians: ‖μ₁ − μ₂‖² + Σ (a + b − 2√(ab)).
        let p = Metrics.Gaussian(mean: [0, 1, 2], covariance: [1, 0, 0, 0, 4, 0, 0, 0, 9])
        let q = Metrics.Gaussian(mean: [1, 1, 0], covariance: [4, 0, 0, 0, 1, 0, 0, 0, 9])
        let expected: Double = 1 + 4 + 1 + 1 + 0   // mean term 5; traces (1+4−2·2) + (4+1−2·2) + (9+9−2·9)
        XCTAssertEqual(Metrics.frechetDistance(p, q), expected, accuracy: 1e-9)
        // A rotated covariance against the identity: Tr(I + Σ − 2Σ^½) with Σ = R diag(4, 1/4) Rᵀ.
        let c = cos(0.3), s = sin(0.3)
        let r = [c, -s, s, c], diag = [4.0, 0, 0, 0.25]
        let rd = LinearAlgebra.matmul(r, diag, m: 2, k: 2, n: 2)
        let sigma = LinearAlgebra.matmul(rd, [c, s, -s, c], m: 2, k: 2, n: 2)
        let fd = Metrics.frechetDistance(Metrics.Gaussian(mean: [0, 0], covariance: [1, 0, 0, 1]),
                                         Metrics.Gaussian(mean: [0, 0], covariance: sigma))
        XCTAssertEqual(fd, 2 + 4.25 - 2 * (2 + 0.5), accuracy: 1e-9)
        // The square root squares back to the matrix.
        let root = LinearAlgebra.sqrtPSD(sigma, n: 2)
        let back = LinearAlgebra.matmul(root, root, m: 2, k: 2, n: 2)
        for i in 0..<4 { XCTAssertEqual(back[i], sigma[i], accuracy: 1e-12) }
    }

    func testKernelDistanceIsUnbiasedOnIdenticalDistributions() {
        let x = randomTensor([2000, 8], seed: 2), y = randomTensor([2000, 8], seed: 3)
        let same = Metrics.kernelDistance(x, y, subsets: 20, subsetSize: 500)
        // Unbiased: within one standard deviation of a single estimate of zero, and far below
        // the ≈ 2·E[k(x, x)]/m ≈ 0.03 that keeping the diagonal terms would add.
        XCTAssertLessThan(abs(same.mean), same.std)
        XCTAssertLessThan(abs(same.mean), 0.01)
        let shifted = Metrics.kernelDistance(x, y + 1, subsets: 20, subsetSize: 500)
        XCTAssertGreaterThan(shifted.mean, 10 * max(abs(same.mean), same.std))
    }

    /// With one subset holding every sample the estimate is the unbiased MMD² over all pairs,
    /// whatever order the subset draws them in: against a direct loop over the pairs in Double.
    func testKernelDistanceAgainstDirectPairSums() {
        let (n, d) = (37, 5)   // 37² terms: the vector sum's tail and the diagonal both matter
        let x = randomTensor([n, d], seed: 4), y = randomTensor([n, d], seed: 5) * 0.5 + 0.3
        let (xs, ys) = (x.scalars.map(Double.init), y.scalars.map(Double.init))
        func k(_ a: [Double], _ i: Int, _ b: [Double], _ j: Int) -> Double {
            var dot = 0.0
            for c in 0..<d { dot += a[i * d + c] * b[j * d + c] }
            return pow(dot / Double(d) + 1, 3)
        }
        var kxx = 0.0, kyy = 0.0, kxy = 0.0
        for i in 0..<n {
            for j in 0..<n {
                if i != j { kxx += k(xs, i, xs, j); kyy += k(ys, i, ys, j) }
                kxy += k(xs, i, ys, j)
            }
        }
        let nn = Double(n)
        let expected = (kxx + kyy) / (nn * (nn - 1)) - 2 * kxy / (nn * nn)
        let kid = Metrics.kernelDistance(x, y, subsets: 1, subsetSize: n)
        // The kernel is evaluated in Float, as for the real features.
        XCTAssertEqual(kid.mean, expected, accuracy: 1e-5 * Swift.max(1, abs(expected)))
        XCTAssertGreaterThan(expected, 0.01, "the two sets differ: a test that could fail")
    }

    func testClassifierScoreBounds() {
        let oneClass = [[Double]](repeating: [1, 0, 0, 0, 0, 0, 0, 0, 0, 0], count: 100)
        XCTAssertEqual(Metrics.classifierScore(probabilities: oneClass).mean, 1, accuracy: 1e-12)
        let balanced = (0..<1000).map { i -> [Double] in
            var row = [Double](repeating: 0.001, count: 10)
            row[i % 10] = 1 - 0.009
            return row
        }
        // Balanced classes: exp(H(marginal) − H(row)) = exp(log 10 − H(row)), near 10.
        let row = balanced[0]
        let entropy = -row.reduce(0) { $0 + $1 * log($1) }
        let s = Metrics.classifierScore(probabilities: balanced)
        XCTAssertEqual(s.mean, exp(log(10) - entropy), accuracy: 1e-9)
        XCTAssertGreaterThan(s.mean, 9.3)
    }

    func testPrecisionRecallOnConstructedSets() {
        // Real: a tight cluster at the origin. Fake: half in that cluster, half far away.
        let real = randomTensor([400, 2], seed: 4) * 0.1
        let near = randomTensor([200, 2], seed: 5) * 0.1, far = randomTensor([200, 2], seed: 6) * 0.1 + 50
        let pr = Metrics.precisionRecall(real: real, fake: Tensor.concat([near, far], axis: 0))
        XCTAssertEqual(pr.precision, 0.5, accuracy: 0.06)
        XCTAssertGreaterThan(pr.recall, 0.9)
        // Fakes that cover only a corner of the real cluster: high precision, low recall.
        let corner = randomTensor([400, 2], seed: 7) * 0.01 + 0.15
        let pr2 = Metrics.precisionRecall(real: real, fake: corner)
        XCTAssertGreaterThan(pr2.precision, 0.8)
        XCTAssertLessThan(pr2.recall, 0.3)
    }

    func testPrecisionRecallMatchesPairwiseDistances() {
        // Overlapping clouds, so neither figure is 0 or 1; blocks of 7 rows do not divide 53 or 41.
        let real = randomTensor([53, 5], seed: 8), fake = randomTensor([41, 5], seed: 9) * 1.5 + 0.4
        func rows(_ t: Tensor) -> [[Double]] {
            let v = t.scalars, d = t.shape[1]
            return (0..<t.shape[0]).map { i in (0..<d).map { Double(v[i * d + $0]) } }
        }
        func distance(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) } }
        func radii(_ x: [[Double]]) -> [Double] {
            x.indices.map { i in x.indices.filter { $0 != i }.map { distance(x[i], x[$0]) }.sorted()[2] }
        }
        func covered(_ queries: [[Double]], _ centres: [[Double]], _ r: [Double]) -> Double {
            Double(queries.filter { q in centres.indices.contains { distance(q, centres[$0]) <= r[$0] } }.count) / Double(queries.count)
        }
        let r = rows(real), f = rows(fake)
        let precision = covered(f, r, radii(r)), recall = covered(r, f, radii(f))
        XCTAssertGreaterThan(precision, 0.2); XCTAssertLessThan(precision, 0.95)
        XCTAssertGreaterThan(recall, 0.2); XCTAssertLessThan(recall, 0.95)
        for block in [7, 1000] {
            let pr = Metrics.precisionRecall(real: real, fake: fake, block: block)
            XCTAssertEqual(pr.precision, precision, accuracy: 1e-12, "block \(block)")
            XCTAssertEqual(pr.recall, recall, accuracy: 1e-12, "block \(block)")
        }
    }

    func testClassCoverage() {
        let c = Metrics.classCoverage(predictions: [0, 0, 1, 1, 2, 2, 3, 3] + Array(repeating: 4, count: 92), classes: 10)
        XCTAssertEqual(c.histogram, [2, 2, 2, 2, 92, 0, 0, 0, 0, 0])
        XCTAssertEqual(c.covered, 1)
        let uniform = Metrics.classCoverage(predictions: Array(0..<1000).map { $0 % 10 }, classes: 10)
        XCTAssertEqual(uniform.covered, 10)
        XCTAssertEqual(uniform.klFromUniform, 0, accuracy: 1e-12)
        XCTAssertEqual(Metrics.classCoverage(predictions: Array(repeating: 3, count: 50), classes: 10).klFromUniform, log(10), accuracy: 1e-12)
    }
}
