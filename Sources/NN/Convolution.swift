import Engine

/// 2-D convolution with PyTorch's weight layout [out, in, kh, kw].
public final class Conv2d: Module, WeightedLayer {
    public let weight: Parameter
    public let bias: Parameter?
    public let stride: Int
    public let padding: Padding
    /// Images come and go channels-last ([N, H, W, C]); the weight keeps PyTorch's layout.
    public var channelsLast = false

    public init(_ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1, padding: Padding = .symmetric(0),
                bias: Bool = true, init scheme: Initializer = .pytorchDefault, generator: inout RandomGenerator) {
        precondition(inChannels > 0 && outChannels > 0 && kernel > 0 && stride > 0, "Conv2d sizes must be positive")
        let shape = [outChannels, inChannels, kernel, kernel]
        weight = Parameter(scheme.weight(shape, generator: &generator))
        self.bias = bias ? Parameter(scheme.bias(outChannels, weightShape: shape, generator: &generator)) : nil
        self.stride = stride
        self.padding = padding
    }

    override public var ownParameters: [(String, Parameter)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }
    override public var isPerSample: Bool { true }

    public func forward(_ x: Tensor, weight w: Tensor, bias b: Tensor?) -> Tensor {
        precondition(x.rank == 4, "Conv2d expects \(channelsLast ? "NHWC" : "NCHW") input, got \(x.shape)")
        let size = channelsLast ? (x.shape[1], x.shape[2]) : (x.shape[2], x.shape[3])
        return Tensor.conv2d(x, weight: w, bias: b, geometry(kernelOf: w, inputSize: size))
    }

    func geometry(kernelOf w: Tensor, inputSize: (Int, Int)) -> ConvGeometry {
        padding.geometry(kernel: (w.shape[2], w.shape[3]), stride: (stride, stride), inputSize: inputSize).withChannelsLast(channelsLast)
    }

    override public func callAsFunction(_ x: Tensor) -> Tensor { forward(x, weight: weight.value) }
}

extension Conv2d: ChainableConvolution {
    func convolutionStep(inputSize: (Int, Int), slope: Float?) -> ConvolutionStep {
        ConvolutionStep(.conv2d, weight: weight.value, bias: bias?.value,
                        geometry: geometry(kernelOf: weight.value, inputSize: inputSize), slope: slope)
    }
}

/// Transposed 2-D convolution with PyTorch's weight layout [in, out, kh, kw].
/// With `.same` padding the output is input × stride and the padding is that of the conv2d
/// it transposes (Keras' Conv2DTranspose); otherwise PyTorch's padding and output padding.
public final class ConvTranspose2d: Module, WeightedLayer {
    public let weight: Parameter
    public let bias: Parameter?
    public let stride: Int
    public let padding: Padding
    public let outputPadding: Int
    /// Images come and go channels-last ([N, H, W, C]); the weight keeps PyTorch's layout.
    public var channelsLast = false

    public init(_ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1, padding: Padding = .symmetric(0),
                outputPadding: Int = 0, bias: Bool = true, init scheme: Initializer = .pytorchDefault,
                generator: inout RandomGenerator) {
        precondition(inChannels > 0 && outChannels > 0 && kernel > 0 && stride > 0, "ConvTranspose2d sizes must be positive")
        let shape = [inChannels, outChannels, kernel, kernel]
        weight = Parameter(scheme.weight(shape, generator: &generator))
        self.bias = bias ? Parameter(scheme.bias(outChannels, weightShape: shape, generator: &generator)) : nil
        self.stride = stride
        self.padding = padding
        self.outputPadding = outputPadding
    }

    override public var ownParameters: [(String, Parameter)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }
    override public var isPerSample: Bool { true }

    public func forward(_ x: Tensor, weight w: Tensor, bias b: Tensor?) -> Tensor {
        precondition(x.rank == 4, "ConvTranspose2d expects \(channelsLast ? "NHWC" : "NCHW") input, got \(x.shape)")
        let (geo, size) = geometry(kernelOf: w, inputSize: channelsLast ? (x.shape[1], x.shape[2]) : (x.shape[2], x.shape[3]))
        if let size { return Tensor.convTranspose2d(x, weight: w, bias: b, geo, outputSize: size) }
        return Tensor.convTranspose2d(x, weight: w, bias: b, geo, outputPadding: (outputPadding, outputPadding))
    }

    /// The geometry, and with `.same` padding the output size (input × stride) it is for; without,
    /// the output is the geometry's smallest size plus `outputPadding`.
    func geometry(kernelOf w: Tensor, inputSize: (Int, Int)) -> (ConvGeometry, outputSize: (Int, Int)?) {
        let k = (w.shape[2], w.shape[3])
        if padding == .same {
            let out = (inputSize.0 * stride, inputSize.1 * stride)
            return (Padding.same.geometry(kernel: k, stride: (stride, stride), inputSize: out).withChannelsLast(channelsLast), out)
        }
        return (padding.geometry(kernel: k, stride: (stride, stride), inputSize: inputSize).withChannelsLast(channelsLast), nil)
    }

    override public func callAsFunction(_ x: Tensor) -> Tensor { forward(x, weight: weight.value) }
}

extension ConvTranspose2d: ChainableConvolution {
    func convolutionStep(inputSize: (Int, Int), slope: Float?) -> ConvolutionStep {
        let (geo, size) = geometry(kernelOf: weight.value, inputSize: inputSize)
        return ConvolutionStep(.convTranspose2d(outputPadding: (outputPadding, outputPadding), outputSize: size),
                               weight: weight.value, bias: bias?.value, geometry: geo, slope: slope)
    }
}

/// A layer `Sequential` can hand to `Tensor.convolutionChain` at inference: its step for an input
/// of `inputSize`, followed by leaky ReLU with `slope` if given.
protocol ChainableConvolution {
    func convolutionStep(inputSize: (Int, Int), slope: Float?) -> ConvolutionStep
}
