// Inference through consecutive convolution layers without leaving oneDNN's layout. Layer by
// layer, each oneDNN convolution reorders its input from NCHW into oneDNN's channel-blocked
// layout and its output back, and the bias + activation is one more pass over the output; in a
// chain the activations stay blocked from one convolution to the next and each bias and
// activation is applied where the values already are. The values are those of the layer-by-
// layer path bit for bit (same primitives, same float operations); only the passes are fewer.
// The exception is a last layer with few outputs per pixel (o · kh · kw ≤ 64, the generator's
// 128→1 output layer), which runs on an AVX-512 kernel of its own that reads the previous
// layer's blocked output: the same sums in another order (differences of float rounding).

/// One layer of `Tensor.convolutionChain`: a convolution or transposed convolution with its
/// geometry, then `+ bias` per output channel and, with a `slope`, leaky ReLU (0: ReLU).
public struct ConvolutionStep {
    public enum Kind {
        case conv2d
        /// `outputSize` when given, else the smallest size plus `outputPadding`.
        case convTranspose2d(outputPadding: (Int, Int), outputSize: (Int, Int)?)
    }

    public var kind: Kind
    public var weight: Tensor
    public var bias: Tensor?
    public var geometry: ConvGeometry
    public var slope: Float?

    public init(_ kind: Kind, weight: Tensor, bias: Tensor?, geometry: ConvGeometry, slope: Float?) {
        self.kind = kind
        self.weight = weight
        self.bias = bias
        self.geometry = geometry
        self.slope = slope
    }

    /// The output's height and width for an input of `h × w`.
    public func outputSize(_ h: Int, _ w: Int) -> (Int, Int) {
        switch kind {
        case .conv2d:
            return geometry.smallSize(big: h, w)
        case let .convTranspose2d(outputPadding, outputSize):
            let base = geometry.bigSize(small: h, w)
            return outputSize ?? (base.0 + outputPadding.0, base.1 + outputPadding.1)
        }
    }
}

extension ConvolutionStep {
    /// How this step runs on an NCHW input of `shape` through oneDNN: the kind and problem in
    /// conv2d's terms, and the output's shape. nil when the shapes disagree, the slope is negative,
    /// or the raw convolutions would run it on its stride-1 dual instead — unless `smallOutput`
    /// (a chain's last step after oneDNN steps) and the convolution has o · kh · kw ≤ 64, which
    /// then goes to the engine's small-output kernel (the 128→1 output layer; the C chain refuses
    /// it, before running anything, on CPUs without AVX-512 or AVX2).
    func oneDNNForm(input shape: [Int], smallOutput: Bool = false) -> (kind: OneDNN.Kind, problem: OneDNN.Problem, outShape: [Int])? {
        guard shape.count == 4, weight.rank == 4, weight.shape[2] == geometry.kernelH, weight.shape[3] == geometry.kernelW else { return nil }
        if let slope, !(slope >= 0) { return nil }
        // Chains and the activated op convert to and from NCHW; channels-last layers run layer by layer.
        guard !geometry.channelsLast else { return nil }
        let (n, c, h, w) = (shape[0], shape[1], shape[2], shape[3])
        let g = geometry
        let form: (kind: OneDNN.Kind, problem: OneDNN.Problem, outShape: [Int])
        switch kind {
        case .conv2d:
            let o = weight.shape[0]
            let (oh, ow) = outputSize(h, w)
            guard weight.shape[1] == c, oh > 0, ow > 0 else { return nil }
            let small = smallOutput && o * g.kernelH * g.kernelW <= OneDNN.smallOutputLimit && g.dilationH == 1 && g.dilationW == 1
            guard small || Tensor.conv2dDual(c: c, o: o, g) == nil else { return nil }
            form = (small ? .smallOutput : .forward, .init(n: n, c: c, h: h, w: w, o: o, oh: oh, ow: ow, geometry: g), [n, o, oh, ow])
        case .convTranspose2d:
            let o = weight.shape[1]
            let (bh, bw) = outputSize(h, w)
            guard weight.shape[0] == c, bh > 0, bw > 0, g.smallSize(big: bh, bw) == (h, w),
                  Tensor.convTranspose2dDual(c: c, o: o, g, small: (h, w), big: (bh, bw)) == nil else { return nil }
            // In conv2d's terms a transposed convolution is the input gradient.
            form = (.backwardData, .init(n: n, c: o, h: bh, w: bw, o: c, oh: h, ow: w, geometry: g), [n, o, bh, bw])
        }
        if let bias, bias.count != form.outShape[1] { return nil }
        return form
    }
}

extension Tensor {
    /// The steps applied in turn to NCHW `x`, for inference: nil (nothing computed) while a graph
    /// is being recorded, or when a step is not one the layer-by-layer path would run on oneDNN
    /// (fewer than 16 channels on a side, oneDNN off or unavailable, a geometry it refuses) and
    /// not a last step with o · kh · kw ≤ 64 after such steps, so that the caller runs the layers
    /// one by one.
    public static func convolutionChain(_ x: Tensor, _ steps: [ConvolutionStep]) -> Tensor? {
        guard !GradMode.isEnabled, x.rank == 4, !steps.isEmpty else { return nil }
        var shape = x.shape
        var chain: [OneDNN.ChainStep] = []
        for (index, s) in steps.enumerated() {
            // A last layer with few outputs per pixel after oneDNN layers runs on the engine's own
            // kernel, which reads their blocked output.
            guard let form = s.oneDNNForm(input: shape, smallOutput: index > 0 && index == steps.count - 1) else { return nil }
            chain.append(.init(kind: form.kind, problem: form.problem, weight: s.weight, bias: s.bias, slope: s.slope))
            shape = form.outShape
        }
        return OneDNN.runChain(x, chain, outShape: shape)
    }
}
