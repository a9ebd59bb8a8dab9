import Engine

/// 2-D convolution with PyTorch's weight layout [out, in, kh, kw].
public final class Conv2d: Module, WeightedLayer {
    public let weight: Parameter
    public let bias: Parameter?
    public let stride: Int
    public let padding: Padding

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

    public func forward(_ x: Tensor, weight w: Tensor, bias b: Tensor?) -> Tensor {
        precondition(x.rank == 4, "Conv2d expects NCHW input, got \(x.shape)")
        let k = (w.shape[2], w.shape[3])
        let geo = padding.geometry(kernel: k, stride: (stride, stride), inputSize: (x.shape[2], x.shape[3]))
        return Tensor.conv2d(x, weight: w, bias: b, geo)
    }

    override public func callAsFunction(_ x: Tensor) -> Tensor { forward(x, weight: weight.value) }
}

extension Conv2d: ChainableConvolution {
    func convolutionStep(inputSize: (Int, Int), slope: Float?) -> (step: ConvolutionStep, outputSize: (Int, Int)) {
        let w = weight.value
        let geo = padding.geometry(kernel: (w.shape[2], w.shape[3]), stride: (stride, stride), inputSize: inputSize)
        return (ConvolutionStep(.conv2d, weight: w, bias: bias?.value, geometry: geo, slope: slope),
                geo.smallSize(big: inputSize.0, inputSize.1))
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

    public func forward(_ x: Tensor, weight w: Tensor, bias b: Tensor?) -> Tensor {
        precondition(x.rank == 4, "ConvTranspose2d expects NCHW input, got \(x.shape)")
        let k = (w.shape[2], w.shape[3])
        if padding == .same {
            let out = (x.shape[2] * stride, x.shape[3] * stride)
            let geo = Padding.same.geometry(kernel: k, stride: (stride, stride), inputSize: out)
            return Tensor.convTranspose2d(x, weight: w, bias: b, geo, outputSize: out)
        }
        let geo = padding.geometry(kernel: k, stride: (stride, stride), inputSize: (x.shape[2], x.shape[3]))
        return Tensor.convTranspose2d(x, weight: w, bias: b, geo, outputPadding: (outputPadding, outputPadding))
    }

    override public func callAsFunction(_ x: Tensor) -> Tensor { forward(x, weight: weight.value) }
}

extension ConvTranspose2d: ChainableConvolution {
    func convolutionStep(inputSize: (Int, Int), slope: Float?) -> (step: ConvolutionStep, outputSize: (Int, Int)) {
        let w = weight.value
        let k = (w.shape[2], w.shape[3])
        if padding == .same {
            let out = (inputSize.0 * stride, inputSize.1 * stride)
            let geo = Padding.same.geometry(kernel: k, stride: (stride, stride), inputSize: out)
            return (ConvolutionStep(.convTranspose2d(outputPadding: (0, 0), outputSize: out), weight: w, bias: bias?.value,
                                    geometry: geo, slope: slope), out)
        }
        let geo = padding.geometry(kernel: k, stride: (stride, stride), inputSize: inputSize)
        let base = geo.bigSize(small: inputSize.0, inputSize.1)
        return (ConvolutionStep(.convTranspose2d(outputPadding: (outputPadding, outputPadding), outputSize: nil), weight: w,
                                bias: bias?.value, geometry: geo, slope: slope),
                (base.0 + outputPadding, base.1 + outputPadding))
    }
}

/// A layer `Sequential` can hand to `Tensor.convolutionChain` at inference: its step for an input
/// of `inputSize`, followed by leaky ReLU with `slope` if given, and the output size.
protocol ChainableConvolution {
    func convolutionStep(inputSize: (Int, Int), slope: Float?) -> (step: ConvolutionStep, outputSize: (Int, Int))
}
