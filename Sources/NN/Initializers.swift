import Engine

/// Weight initialization schemes; models pick one per tutorial.
public enum Initializer: Sendable {
    /// PyTorch's default for Linear and Conv: Kaiming uniform with a = √5 on the weight, i.e.
    /// U(−1/√fan_in, 1/√fan_in), and the same bound for the bias.
    case pytorchDefault
    /// Keras' default: Glorot (Xavier) uniform weights, zero bias.
    case glorotUniform
    /// N(0, std) weights, zero bias (DCGAN uses std 0.02).
    case normal(std: Float)
    /// Normal truncated to ±2 std, zero bias (TensorFlow's truncated_normal).
    case truncatedNormal(std: Float)

    /// Fan-in and fan-out of a weight; for convolutions the receptive field multiplies both.
    /// PyTorch takes them from dimensions 1 and 0 even for ConvTranspose (weight [in, out]), so
    /// fan_in there is out·k·k; following it keeps default init identical to torch's.
    static func fans(_ shape: [Int]) -> (Int, Int) {
        let field = shape.count > 2 ? shape[2...].reduce(1, *) : 1
        let (a, b) = (shape[0], shape.count > 1 ? shape[1] : 1)
        return (b * field, a * field)
    }

    public func weight(_ shape: [Int], generator: inout RandomGenerator) -> Tensor {
        let (fanIn, fanOut) = Initializer.fans(shape)
        switch self {
        case .pytorchDefault:
            // gain = √(2 / (1 + 5)), bound = gain · √(3 / fan_in) = 1/√fan_in
            let bound = 1 / Float(fanIn).squareRoot()
            return Tensor.rand(shape, low: -bound, high: bound, generator: &generator)
        case .glorotUniform:
            let limit = (6 / Float(fanIn + fanOut)).squareRoot()
            return Tensor.rand(shape, low: -limit, high: limit, generator: &generator)
        case .normal(let std):
            return Tensor.randn(shape, generator: &generator) * std
        case .truncatedNormal(let std):
            var t = Tensor.randn(shape, generator: &generator)
            // Redraw values beyond two standard deviations, as TensorFlow does.
            t.withUnsafeMutableBufferPointer { p in
                for i in 0..<p.count {
                    while Swift.abs(p[i]) > 2 {
                        var one: Float = 0
                        withUnsafeMutablePointer(to: &one) { generator.fillNormal(UnsafeMutableBufferPointer(start: $0, count: 1)) }
                        p[i] = one
                    }
                }
            }
            return t * std
        }
    }

    public func bias(_ count: Int, weightShape: [Int], generator: inout RandomGenerator) -> Tensor {
        switch self {
        case .pytorchDefault:
            let (fanIn, _) = Initializer.fans(weightShape)
            let bound = fanIn > 0 ? 1 / Float(fanIn).squareRoot() : 0
            return Tensor.rand([count], low: -bound, high: bound, generator: &generator)
        default:
            return Tensor.zeros([count])
        }
    }
}
