import CSupport
import XCTest

/// The sigmoid, tanh and Box–Muller loops run in whichever copy suits the CPU (AVX-512, AVX2 +
/// FMA or baseline x86-64, CSupport's SameBitsClones.h); a run resumed on another machine must
/// still continue bit for bit. The vector copies fuse multiply-adds written as fmaf and the
/// baseline one calls libm's, so every copy this CPU can run must give the baseline's bits.
final class SameBitsCopiesTests: XCTestCase {
    /// Bit patterns spread over all 2³² (NaNs, infinities, denormals, both signs) and the
    /// region where the activations change fastest.
    private static let inputs: [Float] = {
        var xs = stride(from: UInt64(0), to: 1 << 32, by: 4099).map { Float(bitPattern: UInt32($0)) }
        xs += stride(from: Float(-20), through: 20, by: 0.000_37).map { $0 }
        return xs
    }()

    private func vectorCopies<F>(_ atLevel: (Int32) -> F?) throws -> [(Int32, F)] {
        let copies = (1...2).compactMap { level in atLevel(Int32(level)).map { (Int32(level), $0) } }
        if copies.isEmpty { throw XCTSkip("this CPU runs only the baseline copy") }
        return copies
    }

    private func differingBits(_ a: [Float], _ b: [Float]) -> Int {
        zip(a, b).filter { $0.bitPattern != $1.bitPattern }.count
    }

    func testActivationCopiesGiveTheBaselinesBits() throws {
        let xs = Self.inputs
        for (name, atLevel) in [("sigmoid", gan_sigmoid_at_level), ("tanh", gan_tanh_at_level)] {
            let baseline = try XCTUnwrap(atLevel(0), name)
            var expected = [Float](repeating: 0, count: xs.count)
            baseline(xs, &expected, xs.count)
            for (level, copy) in try vectorCopies(atLevel) {
                var y = [Float](repeating: .nan, count: xs.count)
                copy(xs, &y, xs.count)
                XCTAssertEqual(differingBits(y, expected), 0, "\(name): level \(level) against the baseline copy, \(xs.count) inputs")
            }
        }
    }

    func testNormalCopiesGiveTheBaselinesBits() throws {
        // Uniforms as the generator makes them (k·2⁻²⁴), scrambled so neighbours differ, including
        // 0 (the largest radius) and the quadrant edges of the angle.
        let count = 1 << 20
        var u = (0..<count).map { Float(($0 &* 2_654_435_761) & 0xFF_FFFF) * 0x1p-24 }
        u[0] = 0; u[1] = 0.25; u[3] = 0.5; u[5] = 0.75
        let baseline = try XCTUnwrap(gan_box_muller_at_level(0))
        for (mean, std) in [(Float(0), Float(1)), (0.5, 2.5)] {
            var expected = [Float](repeating: 0, count: count - 1)
            baseline(u, &expected, count - 1, mean, std)
            for (level, copy) in try vectorCopies(gan_box_muller_at_level) {
                var z = [Float](repeating: .nan, count: count - 1)
                copy(u, &z, count - 1, mean, std)
                XCTAssertEqual(differingBits(z, expected), 0, "normals (mean \(mean), std \(std)): level \(level) against the baseline copy")
            }
        }
    }
}
