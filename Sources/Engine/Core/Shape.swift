/// Shape arithmetic shared by ops and kernels.
public enum Shape {
    @inline(__always) public static func count(_ shape: [Int]) -> Int { shape.reduce(1, *) }

    /// Row-major strides of a contiguous tensor.
    public static func strides(_ shape: [Int]) -> [Int] {
        var s = [Int](repeating: 1, count: shape.count)
        var acc = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) { s[i] = acc; acc *= shape[i] }
        return s
    }

    /// NumPy broadcasting of two shapes; `nil` when they are incompatible.
    public static func broadcast(_ a: [Int], _ b: [Int]) -> [Int]? {
        let n = max(a.count, b.count)
        var out = [Int](repeating: 1, count: n)
        for i in 0..<n {
            let da = i < n - a.count ? 1 : a[i - (n - a.count)]
            let db = i < n - b.count ? 1 : b[i - (n - b.count)]
            if da == db || db == 1 { out[i] = da } else if da == 1 { out[i] = db } else { return nil }
        }
        return out
    }

    /// Normalizes a possibly negative axis.
    @inline(__always) public static func axis(_ axis: Int, rank: Int) -> Int {
        let a = axis < 0 ? axis + rank : axis
        precondition(a >= 0 && a < max(rank, 1), "axis \(axis) out of range for rank \(rank)")
        return a
    }
}

/// A tensor [N, C, …] seen per channel (axis 1): images, channels, values per channel in one
/// image, the axes a per-channel statistic reduces and the shape a per-channel factor broadcasts as.
struct ChannelGeometry {
    let n: Int, c: Int, inner: Int
    let axes: [Int]
    let channelShape: [Int]

    init(_ shape: [Int]) {
        (n, c) = (shape[0], shape[1])
        inner = shape.reduce(1, *) / Swift.max(n * c, 1)
        axes = [0] + Array(2..<Swift.max(shape.count, 2))
        channelShape = [1, c] + Array(repeating: 1, count: Swift.max(shape.count - 2, 0))
    }
}
