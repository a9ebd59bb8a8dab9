// A dense layer and its activation, forward and backward, on buffers the caller allocated once
// and without a graph: for a training step planned ahead of time (`DenseGANStep`), which
// records no nodes and allocates nothing. Each call runs exactly the kernels
// `Tensor.linearActivated` and its rule run, split over the threads the same way, so the values
// are the graph's bit for bit.

/// A dense layer's passes on raw row-major buffers: x [rows, in], weight [out, in] (PyTorch's
/// layout), y [rows, out].
public enum DenseLayerPass {
    /// y = activation(x · weightᵀ + bias): `Tensor.linearActivated`'s forward.
    public static func forward(_ x: UnsafePointer<Float>, rows: Int, weight: Tensor, bias: Tensor?, _ activation: LayerActivation,
                               into y: UnsafeMutablePointer<Float>) {
        precondition(weight.rank == 2 && (bias == nil || bias!.shape == [weight.shape[0]]),
                     "DenseLayerPass.forward: weight \(weight.shape), bias \(bias?.shape ?? [])")
        let (inFeatures, outFeatures) = (weight.shape[1], weight.shape[0])
        let bs = bias?.storage.base
        sgemm(transA: false, transB: true, m: rows, n: outFeatures, k: inFeatures, x, lda: inFeatures,
              weight.storage.base, ldb: inFeatures, y, ldc: outFeatures) { block, columns in
            Kernels.activate(y, stride: outFeatures, rows: block, columns: columns, bias: bs, activation)
        }
    }

    /// A layer's activation gradient: d/d(output) in `gradient` [rows, columns] becomes
    /// d/d(pre-activation) in place, read off `output`, with the bias gradient summed into
    /// `biasGradient` where given.
    public struct ActivationGradient {
        public let gradient: UnsafeMutablePointer<Float>, output: UnsafePointer<Float>
        public let rows: Int, columns: Int, activation: LayerActivation
        public let biasGradient: UnsafeMutablePointer<Float>?

        public init(gradient: UnsafeMutablePointer<Float>, output: UnsafePointer<Float>, rows: Int, columns: Int,
                    _ activation: LayerActivation, biasGradient: UnsafeMutablePointer<Float>?) {
            (self.gradient, self.output, self.rows, self.columns) = (gradient, output, rows, columns)
            (self.activation, self.biasGradient) = (activation, biasGradient)
        }

        public func run() {
            Kernels.activationGradient(gradient, output, rows: rows, columns: columns, activation, into: gradient, sums: biasGradient)
        }
    }

    /// The backward of `forward`: `gradient` (d/dy on entry, or d/d(pre-activation) already when
    /// `activated`) becomes d/d(pre-activation) in place, then the weight's, bias's and input's
    /// gradients are written where asked (nil: not wanted), as `linearActivated`'s rule without a
    /// graph: the two products at once, one per thread, when both are wanted and large enough.
    /// `then` runs right after the input gradient, on its thread: the layer below's activation
    /// gradient, which needs nothing else, so it runs while the other thread finishes the weight
    /// gradient.
    public static func backward(_ gradient: UnsafeMutablePointer<Float>, output y: UnsafePointer<Float>, input x: UnsafePointer<Float>,
                                rows: Int, weight: Tensor, _ activation: LayerActivation,
                                weightGradient dw: UnsafeMutablePointer<Float>?, biasGradient db: UnsafeMutablePointer<Float>?,
                                inputGradient dx: UnsafeMutablePointer<Float>?, activated: Bool = false,
                                then below: ActivationGradient? = nil) {
        let (inFeatures, outFeatures) = (weight.shape[1], weight.shape[0])
        if !activated {
            ActivationGradient(gradient: gradient, output: y, rows: rows, columns: outFeatures, activation, biasGradient: db).run()
        }
        let w = UnsafePointer(weight.storage.base)
        func inputGradient(_ dx: UnsafeMutablePointer<Float>) {
            sgemm(transA: false, transB: false, m: rows, n: inFeatures, k: outFeatures, gradient, lda: outFeatures, w, ldb: inFeatures,
                  dx, ldc: inFeatures)
        }
        func weightGradient(_ dw: UnsafeMutablePointer<Float>) {
            sgemm(transA: true, transB: false, m: outFeatures, n: inFeatures, k: rows, gradient, lda: outFeatures, x, ldb: inFeatures,
                  dw, ldc: inFeatures)
        }
        if let dw, let dx, pairsGradientProducts(flopsEach: 2 * rows * outFeatures * inFeatures) {
            Parallel.split(2) { p in if p == 0 { weightGradient(dw) } else { inputGradient(dx); below?.run() } }
            return
        }
        if let dx { inputGradient(dx); below?.run() }
        if let dw { weightGradient(dw) }
    }
}
