import Engine

/// How a convolution pads its input.
public enum Padding: Sendable, Equatable {
    /// The same amount on every side (PyTorch's `padding=p`).
    case symmetric(Int)
    /// Explicit amounts per side.
    case explicit(top: Int, left: Int, bottom: Int, right: Int)
    /// Keras/TensorFlow "same": output = ⌈input / stride⌉; when the total padding is odd the
    /// extra row and column go to the bottom and right.
    case same
    /// Keras "valid": no padding.
    public static let valid = Padding.symmetric(0)

    /// (before, after) padding for one axis of a conv2d whose input has `size` elements.
    static func sameAmounts(size: Int, kernel: Int, stride: Int) -> (Int, Int) {
        let out = (size + stride - 1) / stride
        let total = Swift.max((out - 1) * stride + kernel - size, 0)
        return (total / 2, total - total / 2)
    }

    func geometry(kernel: (Int, Int), stride: (Int, Int), inputSize: (Int, Int)) -> ConvGeometry {
        switch self {
        case .symmetric(let p):
            return ConvGeometry(kernel: kernel, stride: stride, padding: (p, p, p, p))
        case let .explicit(t, l, b, r):
            return ConvGeometry(kernel: kernel, stride: stride, padding: (t, l, b, r))
        case .same:
            let (t, b) = Padding.sameAmounts(size: inputSize.0, kernel: kernel.0, stride: stride.0)
            let (l, r) = Padding.sameAmounts(size: inputSize.1, kernel: kernel.1, stride: stride.1)
            return ConvGeometry(kernel: kernel, stride: stride, padding: (t, l, b, r))
        }
    }
}
