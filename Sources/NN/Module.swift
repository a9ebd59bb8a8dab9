import Foundation
import Engine

/// A trainable tensor shared by reference between a layer and its optimizer.
/// Freezing (`isFrozen`) stops gradients from reaching it, as `requires_grad_(False)` does.
public final class Parameter {
    public var value: Tensor
    public var isFrozen: Bool {
        didSet { value = isFrozen ? value.detached() : value.detached().requiringGrad() }
    }

    public init(_ value: Tensor, frozen: Bool = false) {
        isFrozen = frozen
        self.value = frozen ? value.detached() : value.detached().requiringGrad()
    }

    public var grad: Tensor? { value.grad }
    public var shape: [Int] { value.shape }

    /// Replaces the values in place, keeping the autograd leaf (optimizers and loading use this).
    public func assign(_ new: Tensor) {
        precondition(new.shape == value.shape, "assigning shape \(new.shape) to a parameter of shape \(value.shape)")
        new.withUnsafeBufferPointer { src in
            value.withUnsafeMutableBufferPointer { dst in dst.baseAddress!.update(from: src.baseAddress!, count: src.count) }
        }
    }

    public func zeroGrad() { value.zeroGrad() }
}

/// A non-trainable tensor saved with the weights (running statistics, spectral-norm vectors).
public final class Buffer {
    public var value: Tensor
    /// PyTorch stores some buffers as integers (`num_batches_tracked` is int64).
    public let isInteger: Bool
    public init(_ value: Tensor, isInteger: Bool = false) { self.value = value; self.isInteger = isInteger }
}

/// Base class of layers. Subclasses list their own parameters, buffers and children under
/// the names PyTorch's `state_dict` uses, and implement `callAsFunction`.
open class Module {
    public private(set) var isTraining = true

    public init() {}

    /// This module's own parameters, in PyTorch registration order.
    open var ownParameters: [(String, Parameter)] { [] }
    open var ownBuffers: [(String, Buffer)] { [] }
    open var children: [(String, Module)] { [] }

    open func callAsFunction(_ x: Tensor) -> Tensor { x }

    /// Whether each sample's output depends on that sample alone and a call changes no state:
    /// then one call on two batches joined along the batch axis gives, sample by sample, what a
    /// call on each gives (up to rounding, and up to which random numbers dropout draws for
    /// which sample), and a trainer may join them. False unless a layer says so.
    open var isPerSample: Bool { false }

    /// Every parameter with its dotted path (`main.3.weight`).
    public func namedParameters() -> [(String, Parameter)] {
        var out = ownParameters
        for (name, child) in children { out += child.namedParameters().map { ("\(name).\($0.0)", $0.1) } }
        return out
    }

    public func namedBuffers() -> [(String, Buffer)] {
        var out = ownBuffers
        for (name, child) in children { out += child.namedBuffers().map { ("\(name).\($0.0)", $0.1) } }
        return out
    }

    /// Every parameter, in `namedParameters` order, without building the names (the trainer
    /// freezes and unfreezes the discriminator's twice a step).
    public var parameters: [Parameter] {
        var out = ownParameters.map(\.1)
        for (_, child) in children { out += child.parameters }
        return out
    }
    public var trainableParameters: [Parameter] { parameters.filter { !$0.isFrozen } }
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.value.count } }

    /// Train mode for this module and its children (batch norm statistics, dropout).
    public func train(_ on: Bool = true) {
        isTraining = on
        for (_, c) in children { c.train(on) }
    }
    public func eval() { train(false) }

    /// Freezes or unfreezes every parameter (a Keras "trainable = False" discriminator).
    public func setFrozen(_ frozen: Bool) {
        for p in parameters where p.isFrozen != frozen { p.isFrozen = frozen }
    }

    public func zeroGrad() { for p in parameters { p.zeroGrad() } }

    /// Parameters and buffers by name, as `state_dict()`.
    public func stateDict() -> [(String, Tensor)] {
        namedParameters().map { ($0.0, $0.1.value.detached()) } + namedBuffers().map { ($0.0, $0.1.value) }
    }

    /// Loads values by name; every name must be present with the same shape (`strict=True`).
    public func loadStateDict(_ values: [String: Tensor], prefix: String = "") throws {
        var problems: [String] = []
        var seen: Set<String> = []
        for (name, p) in namedParameters() {
            let key = prefix + name
            seen.insert(key)
            guard let v = values[key] else { problems.append("missing \(key) \(p.shape)"); continue }
            guard v.shape == p.shape else { problems.append("\(key): shape \(v.shape) in the file, \(p.shape) in the model"); continue }
            p.assign(v)
        }
        for (name, b) in namedBuffers() {
            let key = prefix + name
            seen.insert(key)
            guard let v = values[key] else { problems.append("missing \(key) \(b.value.shape)"); continue }
            guard v.shape == b.value.shape else { problems.append("\(key): shape \(v.shape) in the file, \(b.value.shape) in the model"); continue }
            b.value = v
        }
        let unexpected = values.keys.filter { $0.hasPrefix(prefix) && !seen.contains($0) }.sorted()
        if !unexpected.isEmpty { problems.append("unexpected " + unexpected.joined(separator: ", ")) }
        if !problems.isEmpty { throw StateDictError(problems: problems) }
    }
}

public struct StateDictError: Error, CustomStringConvertible {
    public let problems: [String]
    public init(problems: [String]) { self.problems = problems }
    public var description: String { "state dict does not match the model: " + problems.joined(separator: "; ") }
}

/// Layers applied in order, named "0", "1", … as in `nn.Sequential`.
public final class Sequential: Module {
    public let layers: [Module]
    /// Named once: the trainer walks the children several times a step (train mode, freezing,
    /// zeroing gradients), and formatted the names on every walk.
    let named: [(String, Module)]
    public init(_ layers: [Module]) {
        self.layers = layers
        named = layers.enumerated().map { ("\($0.offset)", $0.element) }
    }
    public convenience init(_ layers: Module...) { self.init(layers) }
    override public var children: [(String, Module)] { named }
    override public var isPerSample: Bool { layers.allSatisfy(\.isPerSample) }
    override public func callAsFunction(_ x: Tensor) -> Tensor {
        guard Sequential.fusesBiasActivation else { return layers.reduce(x) { $1($0) } }
        var h = x
        var i = 0
        while i < layers.count {
            if Sequential.chainsConvolutions, !GradMode.enabled, let (out, next) = chainedConvolutions(from: i, h) {
                h = out
                i = next
                continue
            }
            // A linear/convolution layer or batch norm followed by (leaky) ReLU: the layer up to
            // its per-channel affine step, then that step and the activation in one pass
            // (`Tensor.affineLeakyRelu`): the same values, one or two full-size tensors fewer
            // to write and to keep for the backward pass.
            if i + 1 < layers.count, let fused = Sequential.fused(layers[i], then: layers[i + 1], h) {
                h = fused
                i += 2
            } else {
                h = layers[i](h)
                i += 1
            }
        }
        return h
    }

    /// Whether inference (no graph) runs consecutive convolution layers, with the (leaky) ReLU
    /// after each, as one `Tensor.convolutionChain` (`GAN_CHAIN=0` turns it off, for comparisons).
    nonisolated(unsafe) public static var chainsConvolutions = ProcessInfo.processInfo.environment["GAN_CHAIN"] != "0"

    /// The convolution layers from `start` on (each with the activation after it, if fusable)
    /// run as one chain: the output and the index of the first layer after them, or nil. The
    /// longest run the chain accepts wins (a layer with one channel ends it, for instance).
    func chainedConvolutions(from start: Int, _ x: Tensor) -> (Tensor, Int)? {
        guard x.rank == 4, layers[start] is ChainableConvolution, !Sequential.takesChannelsLast(layers[start]) else { return nil }
        var steps: [ConvolutionStep] = []
        var ends: [Int] = []
        var size = (x.shape[2], x.shape[3])
        var i = start
        while i < layers.count, let layer = layers[i] as? ChainableConvolution, !Sequential.takesChannelsLast(layers[i]) {
            let slope = i + 1 < layers.count ? Sequential.fusableSlope(layers[i + 1]) : nil
            let step = layer.convolutionStep(inputSize: size, slope: slope)
            steps.append(step)
            size = step.outputSize(size.0, size.1)
            i += slope == nil ? 1 : 2
            ends.append(i)
        }
        for count in stride(from: steps.count, through: 1, by: -1) {
            if let y = Tensor.convolutionChain(x, Array(steps.prefix(count))) { return (y, ends[count - 1]) }
        }
        return nil
    }

    /// Whether `callAsFunction` fuses a layer's bias with the activation after it (`GAN_FUSE=0`
    /// turns it off, for comparisons).
    nonisolated(unsafe) public static var fusesBiasActivation = ProcessInfo.processInfo.environment["GAN_FUSE"] != "0"

    /// Whether `callAsFunction` also fuses a layer's bias with a sigmoid or tanh after it
    /// (`GAN_FUSE_SATURATING=0` turns it off, for comparisons; `GAN_FUSE=0` turns off every fusion).
    nonisolated(unsafe) public static var fusesBiasSaturating = ProcessInfo.processInfo.environment["GAN_FUSE_SATURATING"] != "0"

    /// Whether `fused` runs a `Linear` layer and its activation as one op, the bias and the
    /// activation applied by the product's threads (`Tensor.linearActivated`; `GAN_FUSE_LINEAR=0`
    /// turns it off, for comparisons).
    nonisolated(unsafe) public static var fusesLinear = ProcessInfo.processInfo.environment["GAN_FUSE_LINEAR"] != "0"

    /// Whether `fused` runs a convolution layer on oneDNN with its bias and activation as one op
    /// (`Tensor.activatedConvolution`; `GAN_ACTIVATED_CONV=0` turns it off, for comparisons).
    nonisolated(unsafe) public static var activatesConvolutions = ProcessInfo.processInfo.environment["GAN_ACTIVATED_CONV"] != "0"

    /// `layer` then (leaky) ReLU with `slope` as one pass after the layer's main work, or nil
    /// when the layer has no such form.
    static func fused(_ layer: Module, _ x: Tensor, _ slope: Float) -> Tensor? {
        if takesChannelsLast(layer) {
            // The bias runs along the last axis: the output's pixels as rows.
            guard let l = layer as? any WeightedLayer else { return nil }
            let y = l.forward(x, weight: l.weight.value, bias: nil)
            let rows = l.bias == nil ? y : y.reshaped([-1, y.shape[y.rank - 1]])
            return Tensor.biasLeakyRelu(rows, bias: l.bias?.value, alpha: slope, reusingInput: true).reshaped(y.shape)
        }
        if Sequential.activatesConvolutions, x.rank == 4, let conv = layer as? ChainableConvolution,
           let y = Tensor.activatedConvolution(x, conv.convolutionStep(inputSize: (x.shape[2], x.shape[3]), slope: slope)) {
            return y
        }
        if let y = fusedLinear(layer, x, .leakyRelu(slope)) { return y }
        if let l = layer as? any WeightedLayer {
            return Tensor.biasLeakyRelu(l.forward(x, weight: l.weight.value, bias: nil), bias: l.bias?.value, alpha: slope)
        }
        if let bn = layer as? BatchNorm {
            if let r = bn.rows(x) { return fused(layer, r, slope)?.reshaped(x.shape) }
            if let y = bn.fusedTrainingOutput(x, alpha: slope) { return y }
            let p = bn.affineParts(x)
            return Tensor.affineLeakyRelu(p.input, scale: p.scale, shift: p.shift, alpha: slope)
        }
        return nil
    }

    /// A `Linear` layer on [N, in] rows and `activation` as one op (`Tensor.linearActivated`),
    /// when `fusesLinear`; else nil.
    static func fusedLinear(_ layer: Module, _ x: Tensor, _ activation: LayerActivation) -> Tensor? {
        guard fusesLinear, let l = layer as? Linear, x.rank == 2 else { return nil }
        return Tensor.linearActivated(x, weight: l.weight.value, bias: l.bias?.value, activation)
    }

    /// A convolution on channels-last images: the chain and the activated convolution take NCHW,
    /// and its bias runs along the last axis.
    static func takesChannelsLast(_ m: Module) -> Bool {
        (m as? Conv2d)?.channelsLast ?? (m as? ConvTranspose2d)?.channelsLast ?? false
    }

    /// `layer` and the activation after it as one fused op where they have one: (leaky) ReLU
    /// (`Tensor.affineLeakyRelu`), or sigmoid and tanh (`Tensor.biasActivated`); else nil.
    static func fused(_ layer: Module, then activation: Module, _ x: Tensor) -> Tensor? {
        if let slope = fusableSlope(activation) { return fused(layer, x, slope) }
        if fusesBiasSaturating, let f = saturating(activation) { return fused(layer, x, f) }
        return nil
    }

    /// A `Linear` layer and `activation` as one op (with or without a bias), or `layer` without
    /// its bias, then the bias and `activation` as one op; nil for another layer without a bias,
    /// or one whose bias runs along the last axis (channels-last).
    static func fused(_ layer: Module, _ x: Tensor, _ activation: SaturatingActivation) -> Tensor? {
        if let y = fusedLinear(layer, x, .saturating(activation)) { return y }
        guard !takesChannelsLast(layer), let l = layer as? any WeightedLayer, let bias = l.bias?.value else { return nil }
        return Tensor.biasActivated(l.forward(x, weight: l.weight.value, bias: nil), bias: bias, activation)
    }

    static func saturating(_ m: Module) -> SaturatingActivation? {
        if m is Sigmoid { return .sigmoid }
        if m is Tanh { return .tanh }
        return nil
    }

    static func fusableSlope(_ m: Module) -> Float? {
        if m is ReLU { return 0 }
        if let l = m as? LeakyReLU, l.slope >= 0 { return l.slope }
        return nil
    }
}

/// A shared random stream for layers that draw numbers (dropout), so a trainer can save and
/// restore its state for exact resume.
public final class RandomSource {
    public var generator: RandomGenerator
    public init(seed: UInt64) { generator = RandomGenerator(seed: seed) }
}
