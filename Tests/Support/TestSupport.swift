import Engine
import Foundation
import XCTest

/// Shared by every test target: fixture access, tolerance checks, finite differences.
///
/// Locates `../shared/fixtures/ops.safetensors` beside the repository (or `$GAN_FIXTURES`).
public enum Fixtures {
    public static let directory: String = {
        if let env = ProcessInfo.processInfo.environment["GAN_FIXTURES"] { return env }
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return repo.deletingLastPathComponent().appendingPathComponent("shared/fixtures").path
    }()

    static let loaded = Result { try SafeTensors.read(path: directory + "/ops.safetensors") }

    /// The fixture file; a missing or unreadable file fails the calling test with the reason.
    public static var ops: SafeTensors {
        get throws { try loaded.get() }
    }

    public static func get(_ name: String) throws -> Tensor {
        guard let t = try ops[name] else { throw FileFormatError(directory + "/ops.safetensors", "no tensor named \(name)") }
        return t
    }
}

/// |a − b| ≤ atol + rtol·|b| elementwise, with a message that names the worst element.
public func assertClose(_ a: Tensor, _ b: Tensor, rtol: Float = 1e-4, atol: Float = 1e-5, _ what: String = "",
                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.shape, b.shape, "\(what): shapes differ", file: file, line: line)
    guard a.shape == b.shape else { return }
    let x = a.scalars, y = b.scalars
    var worst = 0, worstExcess: Float = -.infinity
    for i in 0..<x.count {
        let excess = abs(x[i] - y[i]) - (atol + rtol * abs(y[i]))
        if excess > worstExcess || x[i].isNaN { worstExcess = x[i].isNaN ? .infinity : excess; worst = i }
    }
    XCTAssert(worstExcess <= 0, "\(what): element \(worst) is \(x[worst]), expected \(y[worst])", file: file, line: line)
}

/// op(a) · op(b) in double, and Σ |op(a)| · |op(b)| per element (the rounding bound's scale).
public func doubleProduct(_ a: Tensor, _ b: Tensor, _ ta: Bool, _ tb: Bool) -> (value: [Double], scale: [Double], k: Int) {
    let (m, k) = ta ? (a.shape[1], a.shape[0]) : (a.shape[0], a.shape[1])
    let n = tb ? b.shape[0] : b.shape[1]
    let (x, y) = (a.scalars.map(Double.init), b.scalars.map(Double.init))
    var value = [Double](repeating: 0, count: m * n), scale = value
    for i in 0..<m {
        for j in 0..<n {
            var s = 0.0, t = 0.0
            for p in 0..<k {
                let u = ta ? x[p * m + i] : x[i * k + p]
                let v = tb ? y[j * k + p] : y[p * n + j]
                s += u * v
                t += abs(u * v)
            }
            value[i * n + j] = s
            scale[i * n + j] = t
        }
    }
    return (value, scale, k)
}

/// The largest error of `got` against the double product, in units of the rounding bound
/// |float product − exact| ≤ k · ε · Σ|aᵢ bᵢ| (ε = 2⁻²⁴), with room for the final rounding to
/// float: at most 1 when every element is within it.
public func productRoundingError(_ got: [Float], _ r: (value: [Double], scale: [Double], k: Int)) -> Double {
    var worst = 0.0
    for i in 0..<got.count {
        let bound = Double(r.k + 2) * 0x1p-24 * r.scale[i] + 1e-30
        worst = max(worst, abs(Double(got[i]) - r.value[i]) / bound)
    }
    return worst
}

public func randomTensor(_ shape: [Int], seed: UInt64, scale: Float = 1) -> Tensor {
    var g = RandomGenerator(seed: seed)
    return Tensor.randn(shape, generator: &g) * scale
}

/// (g(x + h·eᵢ) − g(x − h·eᵢ)) / 2h for every element i of input `k`.
func centralDifferences(_ inputs: [Tensor], _ k: Int, _ h: Float, _ g: ([Tensor]) -> Float) -> [Float] {
    let x = inputs[k]
    return (0..<x.count).map { i in
        var plus = x, minus = x
        plus.withUnsafeMutableBufferPointer { $0[i] += h }
        minus.withUnsafeMutableBufferPointer { $0[i] -= h }
        var a = inputs, b = inputs
        a[k] = plus; b[k] = minus
        return (g(a) - g(b)) / (2 * h)
    }
}

/// Central finite differences of a scalar function, in Double around Float inputs.
/// Compares every entry of `analytic` with (f(x + h) − f(x − h)) / 2h.
public func checkGradient(_ inputs: [Tensor], _ what: String, h: Float = 1e-2, rtol: Float = 2e-2, atol: Float = 2e-3,
                   file: StaticString = #filePath, line: UInt = #line,
                   _ f: ([Tensor]) -> Tensor) {
    let leaves = inputs.map { $0.requiringGrad() }
    let y = f(leaves)
    XCTAssertEqual(y.count, 1, "\(what): the checked function must return a scalar", file: file, line: line)
    let analytic = y.gradients(wrt: leaves)
    for (k, x) in inputs.enumerated() {
        let numeric = centralDifferences(inputs, k, h) { xs in withoutGrad { f(xs).item } }
        assertClose(analytic[k], Tensor(shape: x.shape, numeric), rtol: rtol, atol: atol, "\(what) d/dinput\(k)", file: file, line: line)
    }
}

/// Second order: the gradient of s(x) = ⟨∇f(x), v⟩ (computed with `createGraph`) against finite
/// differences of s itself.
public func checkSecondOrder(_ inputs: [Tensor], _ what: String, h: Float = 1e-2, rtol: Float = 3e-2, atol: Float = 3e-3,
                      file: StaticString = #filePath, line: UInt = #line,
                      _ f: @escaping ([Tensor]) -> Tensor) {
    let directions = inputs.enumerated().map { randomTensor($0.element.shape, seed: 900 + UInt64($0.offset)) }
    let s: ([Tensor]) -> Tensor = { xs in
        let leaves = xs.map { $0.requiresGrad ? $0 : $0.requiringGrad() }
        let y = f(leaves)
        let g = y.gradients(wrt: leaves, createGraph: true)
        var total = (g[0] * directions[0]).sum()
        for k in 1..<g.count { total = total + (g[k] * directions[k]).sum() }
        return total
    }
    // The finite-difference side needs gradients, so grad mode stays on while it evaluates s.
    let leaves = inputs.map { $0.requiringGrad() }
    let analytic = s(leaves).gradients(wrt: leaves)
    for (k, x) in inputs.enumerated() {
        let numeric = centralDifferences(inputs, k, h) { s($0).item }
        assertClose(analytic[k], Tensor(shape: x.shape, numeric), rtol: rtol, atol: atol, "\(what) second order d/dinput\(k)", file: file, line: line)
    }
}

/// Reduces a tensor to a scalar through a fixed random projection, so every element counts.
public func project(_ y: Tensor, seed: UInt64 = 77) -> Tensor { (y * randomTensor(y.shape, seed: seed)).sum() }

/// A directory of `count` random 28×28 images with labels 0–9 in turn, as the four IDX files a
/// `--dataset DIR` needs (train and t10k hold the same images).
public func syntheticIDXDirectory(count n: Int = 48, seed: UInt64 = 11) -> String {
    var g = RandomGenerator(seed: seed)
    let pixels = Tensor.rand([n * 784], generator: &g).scalars.map { UInt8($0 * 255) }
    return idxDirectory(images: pixels, count: n, name: "synthetic-\(n)-\(seed)")
}

/// A directory holding `images` (`count` 28×28 images, row-major bytes) with labels 0–9 in turn
/// as the four IDX files a `--dataset DIR` needs; train and t10k hold the same images.
public func idxDirectory(images pixels: [UInt8], count n: Int, name: String) -> String {
    precondition(pixels.count == n * 784, "\(n) images need \(n * 784) bytes, got \(pixels.count)")
    let dir = NSTemporaryDirectory() + "gan-\(name)-\(getpid())"
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    func idx(_ dims: [Int], _ body: [UInt8]) -> Data {
        var out: [UInt8] = [0, 0, 8, UInt8(dims.count)]
        for d in dims { out += [UInt8(d >> 24 & 0xFF), UInt8(d >> 16 & 0xFF), UInt8(d >> 8 & 0xFF), UInt8(d & 0xFF)] }
        return Data(out + body)
    }
    for stem in ["train", "t10k"] {
        try! idx([n, 28, 28], pixels).write(to: URL(fileURLWithPath: "\(dir)/\(stem)-images-idx3-ubyte"))
        try! idx([n], (0..<n).map { UInt8($0 % 10) }).write(to: URL(fileURLWithPath: "\(dir)/\(stem)-labels-idx1-ubyte"))
    }
    return dir
}
