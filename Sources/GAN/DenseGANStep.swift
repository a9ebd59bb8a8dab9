import Engine
import NN

/// One training iteration of a GAN whose generator and discriminator are dense layers, each
/// followed by an activation (the `mlp` model), with a cross-entropy loss, planned
/// once: every activation and gradient has a buffer allocated when the plan is made, no graph
/// is recorded, and the loss's gradient is written in closed form. Every value is the one
/// `GANTrainer`'s graph step computes, bit for bit: the same kernels (`DenseLayerPass`), split
/// the same way, on the same operands, and the loss's gradient is its rules' arithmetic.
///
/// A tiny mlp's step is mostly bookkeeping around small products: the graph's nodes, its
/// allocations, the join of real and generated images, the loss's small ops.
final class DenseGANStep {
    /// A `Linear` layer and the activation after it, and its buffers.
    final class Layer {
        let linear: Linear
        let activation: LayerActivation
        var inFeatures: Int { linear.weight.shape[1] }
        var outFeatures: Int { linear.weight.shape[0] }
        /// Buffers: output and d/d(output) [rows, out], weight and bias gradients. The tensors
        /// keep them alive; the gradients are also the parameters' `.grad`.
        var output: Tensor, gradient: Tensor, weightGradient: Tensor, biasGradient: Tensor?
        let outputs: UnsafeMutablePointer<Float>, gradients: UnsafeMutablePointer<Float>
        let weightGradients: UnsafeMutablePointer<Float>, biasGradients: UnsafeMutablePointer<Float>?

        init(_ linear: Linear, _ activation: LayerActivation, rows: Int) {
            self.linear = linear
            self.activation = activation
            let out = linear.weight.shape[0]
            output = Tensor.zeros([rows, out])
            gradient = Tensor.zeros([rows, out])
            weightGradient = Tensor.zeros(linear.weight.shape)
            biasGradient = linear.bias.map { Tensor.zeros($0.shape) }
            // Addresses taken while each tensor is the only holder of its storage (taking one
            // later, once shared with a parameter's `.grad`, would copy it).
            outputs = output.unsafeMutableElements()
            gradients = gradient.unsafeMutableElements()
            weightGradients = weightGradient.unsafeMutableElements()
            biasGradients = biasGradient?.unsafeMutableElements()
        }

        func forward(_ x: UnsafePointer<Float>, rows: Int, into y: UnsafeMutablePointer<Float>? = nil) {
            DenseLayerPass.forward(x, rows: rows, weight: linear.weight.value, bias: linear.bias?.value, activation, into: y ?? outputs)
        }

        /// Backward from `gradients` (d/d(output) on entry, d/d(pre-activation) when `activated`),
        /// whose output was `y` (default: the layer's buffer); with `parameters`, the weight and
        /// bias gradients; with `below`, that layer's activation gradient right after its input's.
        func backward(input x: UnsafePointer<Float>, rows: Int, output y: UnsafePointer<Float>? = nil, parameters: Bool,
                      inputGradient dx: UnsafeMutablePointer<Float>?, activated: Bool = false, below: Layer? = nil) {
            DenseLayerPass.backward(gradients, output: y ?? UnsafePointer(outputs), input: x, rows: rows, weight: linear.weight.value,
                                    activation, weightGradient: parameters ? weightGradients : nil,
                                    biasGradient: parameters ? biasGradients : nil, inputGradient: dx, activated: activated,
                                    then: below.map { $0.activationGradient(rows: rows) })
        }

        /// This layer's activation gradient on `rows` rows of its buffers, with its bias gradient.
        func activationGradient(rows: Int) -> DenseLayerPass.ActivationGradient {
            DenseLayerPass.ActivationGradient(gradient: gradients, output: UnsafePointer(outputs), rows: rows, columns: outFeatures,
                                              activation, biasGradient: biasGradients)
        }

        /// Makes the gradient buffers the parameters' `.grad` (the optimizer reads them there,
        /// and so does the trainer's search for a non-finite gradient).
        func attachGradients() {
            linear.weight.value.grad = weightGradient
            if let b = linear.bias, let g = biasGradient { b.value.grad = g }
        }
    }

    let generator: [Layer]
    let discriminator: [Layer]
    let rows: Int
    /// [2·rows, image]: real images, then the generator's output, written there by its last layer.
    var joined: Tensor
    let joinedElements: UnsafeMutablePointer<Float>
    /// Where the caller writes each iteration's real images, [rows, image]: the joined batch's
    /// first rows.
    var realImages: UnsafeMutablePointer<Float> { joinedElements }
    let imageSize: Int
    /// The discriminator's outputs of the last iteration, [3·rows]: on the real images and on
    /// the generated ones before its update, then on the generated ones after it (if G was
    /// updated).
    var scores: Tensor
    let scoreElements: UnsafeMutablePointer<Float>

    /// The plan for `generator` and `discriminator` trained with `optG` and `optD` on batches of
    /// `rows`, or nil when the models or the training differ from what it runs.
    init?(generator g: Network, discriminator d: Network, optG: Optimizer, optD: Optimizer, rows: Int) {
        guard let gl = DenseGANStep.layers(of: g, optimizer: optG, rows: rows, leading: nil, trailing: Reshape.self),
              let dl = DenseGANStep.layers(of: d, optimizer: optD, rows: 2 * rows, leading: Flatten.self, trailing: nil),
              gl.last!.outFeatures == dl.first!.inFeatures, dl.last!.outFeatures == 1,
              dl.last!.activation == .saturating(.sigmoid) else { return nil }
        generator = gl
        discriminator = dl
        self.rows = rows
        imageSize = gl.last!.outFeatures
        joined = Tensor.zeros([2 * rows, imageSize])
        joinedElements = joined.unsafeMutableElements()
        scores = Tensor.zeros([3 * rows])
        scoreElements = scores.unsafeMutableElements()
    }

    /// The network's layers as (Linear, activation) pairs, between an optional leading and
    /// trailing shape layer; nil for any other layer, a conditional or channels-last network, or
    /// an optimizer that does not hold exactly the network's parameters (the step updates them all
    /// with `optimizer.step()`).
    static func layers(of network: Network, optimizer: Optimizer, rows: Int, leading: Module.Type?, trailing: Module.Type?) -> [Layer]? {
        guard !network.isConditional, !network.channelsLast else { return nil }
        var modules = network.net.layers[...]
        if let leading, let first = modules.first, type(of: first) == leading { modules = modules.dropFirst() }
        if let trailing, let last = modules.last, type(of: last) == trailing { modules = modules.dropLast() }
        guard !modules.isEmpty, modules.count % 2 == 0 else { return nil }
        var layers: [Layer] = []
        var previousOut: Int?
        for k in stride(from: modules.startIndex, to: modules.endIndex, by: 2) {
            guard let linear = modules[k] as? Linear, let activation = DenseGANStep.activation(modules[k + 1]) else { return nil }
            if let previousOut, previousOut != linear.weight.shape[1] { return nil }
            previousOut = linear.weight.shape[0]
            layers.append(Layer(linear, activation, rows: rows))
        }
        let owned = layers.flatMap { [$0.linear.weight] + ($0.linear.bias.map { [$0] } ?? []) }.map(ObjectIdentifier.init)
        guard Set(owned) == Set(optimizer.parameters.map(ObjectIdentifier.init)), owned.count == optimizer.parameters.count else { return nil }
        return layers
    }

    static func activation(_ m: Module) -> LayerActivation? {
        if m is ReLU { return .leakyRelu(0) }
        if let l = m as? LeakyReLU, l.slope >= 0 { return .leakyRelu(l.slope) }
        if m is Sigmoid { return .saturating(.sigmoid) }
        if m is Tanh { return .saturating(.tanh) }
        return nil
    }

    /// One iteration: D's update on the real images in `realImages` and G(z), then, with
    /// `updateGenerator`, G's through the updated D. D's cross-entropy targets are `realTarget`
    /// (1 − label smoothing) and 0; G's is 1, or with `minimax` 0 with the loss negated.
    func run(z: Tensor, realTarget: Float, minimax: Bool, updateGenerator: Bool, optG: Optimizer, optD: Optimizer) {
        let n = rows
        precondition(z.shape == [n, generator[0].inFeatures], "DenseGANStep: z \(z.shape) for \(n) rows")
        let fakeImages = joinedElements + n * imageSize
        // G's forward, its last layer writing into the joined batch after the real images.
        var x = z.unsafeElements
        for (k, layer) in generator.enumerated() {
            let last = k == generator.count - 1
            layer.forward(x, rows: n, into: last ? fakeImages : nil)
            x = UnsafePointer(last ? fakeImages : layer.outputs)
        }
        OpProfiler.mark("G forward (planned)")

        // D on [real; fake], its loss's gradient, its backward, its update.
        forward(discriminator, UnsafePointer(joinedElements), rows: 2 * n)
        let head = discriminator[discriminator.count - 1]
        let scores = head.outputs
        scoreElements.update(from: scores, count: 2 * n)
        let meanScale = 1 / Float(Swift.max(n, 1))
        for i in 0..<(2 * n) {
            head.gradients[i] = DenseGANStep.crossEntropyGradient(scores[i], target: i < n ? realTarget : 0, seed: meanScale)
        }
        for layer in discriminator { layer.attachGradients() }
        for k in stride(from: discriminator.count - 1, through: 0, by: -1) {
            let layer = discriminator[k]
            let input = k == 0 ? UnsafePointer(joinedElements) : UnsafePointer(discriminator[k - 1].outputs)
            layer.backward(input: input, rows: 2 * n, parameters: true, inputGradient: k == 0 ? nil : discriminator[k - 1].gradients)
        }
        // One update of every tensor after the backward, as the graph's step: split in equal
        // shares over all of them, it ran 1.006–1.019× (five `--alternate` runs) a layer's
        // update right after its gradients, whose small layers ran on one thread each.
        optD.step()
        OpProfiler.mark("D step (planned)")
        guard updateGenerator else { return }

        // G: the updated D on the generated images alone, back to them, then G's layers.
        forward(discriminator, UnsafePointer(fakeImages), rows: n)
        (scoreElements + 2 * n).update(from: scores, count: n)
        for i in 0..<n {
            head.gradients[i] = DenseGANStep.crossEntropyGradient(scores[i], target: minimax ? 0 : 1, seed: minimax ? -meanScale : meanScale)
        }
        for k in stride(from: discriminator.count - 1, through: 0, by: -1) {
            let input = k == 0 ? UnsafePointer(fakeImages) : UnsafePointer(discriminator[k - 1].outputs)
            discriminator[k].backward(input: input, rows: n, parameters: false,
                                      inputGradient: k == 0 ? generator[generator.count - 1].gradients : discriminator[k - 1].gradients)
        }
        for layer in generator { layer.attachGradients() }
        for k in stride(from: generator.count - 1, through: 0, by: -1) {
            let layer = generator[k]
            let last = k == generator.count - 1
            let input = k == 0 ? z.unsafeElements : UnsafePointer(generator[k - 1].outputs)
            // The layer below's activation gradient runs on the thread that wrote its input (the
            // worker, when the gradient pair is split), while the caller finishes the weight
            // gradient: 1.006–1.019× the step (five `--alternate` runs, session 46), same bits.
            layer.backward(input: input, rows: n, output: last ? UnsafePointer(fakeImages) : nil, parameters: true,
                           inputGradient: k == 0 ? nil : generator[k - 1].gradients, activated: !last,
                           below: k > 0 ? generator[k - 1] : nil)
        }
        optG.step()
        OpProfiler.mark("G step (planned)")
    }

    /// The layers' forward from `x` [rows, in], each into its output buffer.
    func forward(_ layers: [Layer], _ x: UnsafePointer<Float>, rows: Int) {
        var x = x
        for layer in layers {
            layer.forward(x, rows: rows)
            x = UnsafePointer(layer.outputs)
        }
    }

    /// d/dp of `seed` · BCE(p, target), as the graph computes it: the mean's rule hands each
    /// element `seed` (1/n, negated for minimax's −BCE), then `binaryCrossEntropy`'s rule,
    /// (seed · (p − t)) / max(p(1 − p), 1e-12).
    @inline(__always)
    static func crossEntropyGradient(_ p: Float, target t: Float, seed: Float) -> Float {
        (seed * (p - t)) / Swift.max(p * (1 - p), 1e-12)
    }
}
