// A convolution layer, its bias and the leaky ReLU after it, as one op for training. Layer by
// layer, oneDNN's output is reordered to NCHW and then one more pass adds the bias and applies the
// activation; in the backward one pass makes the activation's gradient, another sums it for the
// bias, and each of the convolution's two backward primitives reorders it into oneDNN's layout.
// Here the bias and activation are applied while the output leaves oneDNN's layout, and the
// gradient is made once, straight into the layout both backward primitives read, with the bias
// sums taken on the way: for the generator's 14→28 layer that is one pass over its 25.7 MB
// gradient instead of four. The forward values are those of the layer-by-layer path bit for bit;
// the bias gradient is the same sum in another order.

extension Tensor {
    /// `leakyRelu(layer(x) + bias, slope)` for the convolution or transposed convolution `step`
    /// (its `slope` set, ≥ 0) on oneDNN, recorded as one op; nil (nothing computed) when the
    /// layer-by-layer path would not run the layer on oneDNN either.
    public static func activatedConvolution(_ x: Tensor, _ step: ConvolutionStep) -> Tensor? {
        guard let slope = step.slope, let form = step.oneDNNForm(input: x.shape) else { return nil }
        let bias = step.bias.map { $0.rank == 1 ? $0 : $0.reshaped([-1]) }
        guard let y = OneDNN.runActivated(form.kind, form.problem, x, step.weight, bias: bias, slope: slope,
                                          outShape: form.outShape) else { return nil }
        return y.recorded("activatedConvolution", [x, step.weight] + (bias.map { [$0] } ?? []), savesOutput: true,
                          Rules.activatedConvolution(x, step.weight, hasBias: bias != nil, form.kind, form.problem,
                                                     step.geometry, slope: slope))
    }
}

extension Rules {
    /// With gp = g · slope(y): the convolution's rule on gp, and Σ gp per channel for the bias.
    /// Without a graph to record, oneDNN makes gp once in its own layout for both primitives;
    /// under one (double backward) the slope is a detached constant, as for `leakyRelu`.
    static func activatedConvolution(_ x: Tensor, _ w: Tensor, hasBias: Bool, _ kind: OneDNN.Kind, _ problem: OneDNN.Problem,
                                     _ geo: ConvGeometry, slope: Float) -> GradRule {
        { g, y, needs in
            let y = y!  // recorded with savesOutput
            let wantsBias = hasBias && needs[2]
            if !GradMode.isEnabled,
               let r = OneDNN.activatedBackward(kind, problem, g: g, y: y, slope: slope, a: x, weight: w,
                                                needs: (needs[0], needs[1], wantsBias)) {
                return [r.input, r.weight] + (hasBias ? [r.bias] : [])
            }
            let gp = Rules.leakyGradient(g, y, alpha: slope)
            let convolution = kind == .backwardData ? Rules.convTranspose2d(x, w, geo) : Rules.conv2d(x, w, geo)
            var grads = convolution(gp, y, Array(needs.prefix(2)))
            if hasBias { grads.append(wantsBias ? gp.sum(axes: [0, 2, 3]) : nil) }
            return grads
        }
    }
}
