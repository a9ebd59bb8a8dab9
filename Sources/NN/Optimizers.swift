import Engine
import Foundation

/// An optimizer updates a fixed list of parameters from their `.grad`. Its state (moments,
/// step count) can be saved and restored by name for exact resume.
public protocol Optimizer: AnyObject {
    var parameters: [Parameter] { get }
    var learningRate: Float { get set }
    func step()
    /// State tensors by name (`state.3.exp_avg`, `step`).
    func stateDict() -> [(String, Tensor)]
    func loadStateDict(_ values: [String: Tensor], prefix: String) throws
    /// After `step()`: how many tensors it updated and whether all their new values are finite,
    /// for an optimizer that checks that while it writes them (nil: this one does not).
    var lastStepCheck: (updated: Int, allFinite: Bool)? { get }
}

extension Optimizer {
    public func zeroGrad() { for p in parameters { p.zeroGrad() } }
    public var lastStepCheck: (updated: Int, allFinite: Bool)? { nil }
}

/// The parameters a step updates (not frozen, with a gradient of their shape), with their
/// index and gradient.
func updatable(_ params: [Parameter]) -> [(index: Int, parameter: Parameter, gradient: Tensor)] {
    params.enumerated().compactMap { i, p in
        guard !p.isFrozen, let g = p.grad else { return nil }
        precondition(g.shape == p.shape, "gradient shape \(g.shape) differs from parameter \(p.shape)")
        return (i, p, g)
    }
}

/// Applies `body(i, p, g, n)` to each parameter with a gradient, with raw pointers.
@inline(__always)
func forEachGradient(_ params: [Parameter], _ body: (Int, UnsafeMutablePointer<Float>, UnsafePointer<Float>, Int) -> Void) {
    for (i, p, g) in updatable(params) {
        g.withUnsafeBufferPointer { gb in
            p.value.withUnsafeMutableBufferPointer { pb in body(i, pb.baseAddress!, gb.baseAddress!, pb.count) }
        }
    }
}

func loadSlot(_ values: [String: Tensor], _ key: String, shape: [Int]) throws -> Tensor {
    guard let t = values[key] else { throw StateDictError(problems: ["missing optimizer state \(key)"]) }
    guard t.shape == shape else { throw StateDictError(problems: ["\(key): shape \(t.shape), expected \(shape)"]) }
    return t
}

/// SGD with optional momentum (PyTorch's formulation: buf = μ·buf + g; Nesterov uses g + μ·buf)
/// and L2 weight decay.
public final class SGD: Optimizer {
    public let parameters: [Parameter]
    public var learningRate: Float
    public let momentum: Float
    public let nesterov: Bool
    public let weightDecay: Float
    var buffers: [Tensor]
    /// PyTorch starts a momentum buffer at the first gradient rather than at zero.
    var started: [Bool]

    public init(_ parameters: [Parameter], learningRate: Float, momentum: Float = 0, nesterov: Bool = false, weightDecay: Float = 0) {
        self.parameters = parameters
        self.learningRate = learningRate
        self.momentum = momentum
        self.nesterov = nesterov
        self.weightDecay = weightDecay
        buffers = parameters.map { Tensor.zeros($0.shape) }
        started = Array(repeating: false, count: parameters.count)
    }

    public func step() {
        let lr = learningRate, mu = momentum, wd = weightDecay, nest = nesterov
        forEachGradient(parameters) { i, p, g, n in
            if mu == 0 {
                for k in 0..<n { p[k] -= lr * (g[k] + wd * p[k]) }
                return
            }
            let first = !started[i]
            started[i] = true
            buffers[i].withUnsafeMutableBufferPointer { b in
                for k in 0..<n {
                    let d = g[k] + wd * p[k]
                    b[k] = first ? d : mu * b[k] + d
                    p[k] -= lr * (nest ? d + mu * b[k] : b[k])
                }
            }
        }
    }

    public func stateDict() -> [(String, Tensor)] {
        parameters.indices.filter { started[$0] }.map { ("state.\($0).momentum_buffer", buffers[$0]) }
    }

    public func loadStateDict(_ values: [String: Tensor], prefix: String = "") throws {
        for i in parameters.indices {
            let key = prefix + "state.\(i).momentum_buffer"
            started[i] = values[key] != nil
            buffers[i] = started[i] ? try loadSlot(values, key, shape: parameters[i].shape) : Tensor.zeros(parameters[i].shape)
        }
    }
}

/// Adam exactly as `torch.optim.Adam` (L2 weight decay added to the gradient, bias correction
/// folded into the step size and the denominator).
public final class Adam: Optimizer {
    public let parameters: [Parameter]
    public var learningRate: Float
    public let beta1: Float, beta2: Float, eps: Float, weightDecay: Float
    public private(set) var steps: [Int]
    var m: [Tensor], v: [Tensor]
    public private(set) var lastStepCheck: (updated: Int, allFinite: Bool)?

    public init(_ parameters: [Parameter], learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999,
                eps: Float = 1e-8, weightDecay: Float = 0) {
        self.parameters = parameters
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecay = weightDecay
        steps = Array(repeating: 0, count: parameters.count)
        m = parameters.map { Tensor.zeros($0.shape) }
        v = parameters.map { Tensor.zeros($0.shape) }
    }

    public func step() {
        var tensors: [OptimizerKernels.AdamTensor] = []
        for (i, p, g) in updatable(parameters) {
            steps[i] += 1
            // Bias corrections in Double, as PyTorch computes them with Python floats.
            let t = Double(steps[i])
            let c1 = 1 - pow(Double(beta1), t), c2 = 1 - pow(Double(beta2), t)
            tensors.append(OptimizerKernels.AdamTensor(
                parameter: p.value.unsafeMutableElements(), gradient: g.unsafeElements,
                m: m[i].unsafeMutableElements(), v: v[i].unsafeMutableElements(), count: p.value.count,
                stepSize: Float(Double(learningRate) / c1), biasCorrection2Sqrt: Float(c2.squareRoot())))
        }
        // The parameters, gradients and moments stay alive (held by `parameters` and `m`, `v`).
        let finite = OptimizerKernels.adam(tensors, beta1: beta1, beta2: beta2, eps: eps, weightDecay: weightDecay)
        lastStepCheck = (tensors.count, finite)
    }

    public func stateDict() -> [(String, Tensor)] {
        parameters.indices.flatMap { i in
            [("state.\(i).step", Tensor(scalar: Float(steps[i]))), ("state.\(i).exp_avg", m[i]), ("state.\(i).exp_avg_sq", v[i])]
        }
    }

    public func loadStateDict(_ values: [String: Tensor], prefix: String = "") throws {
        for i in parameters.indices {
            steps[i] = Int(try loadSlot(values, prefix + "state.\(i).step", shape: []).item)
            m[i] = try loadSlot(values, prefix + "state.\(i).exp_avg", shape: parameters[i].shape)
            v[i] = try loadSlot(values, prefix + "state.\(i).exp_avg_sq", shape: parameters[i].shape)
        }
    }
}

/// RMSProp as `torch.optim.RMSprop` (no momentum, not centered): s = α·s + (1−α)·g²,
/// p −= lr · g / (√s + ε). The WGAN paper trains its critic with it at lr 5e-5.
public final class RMSProp: Optimizer {
    public let parameters: [Parameter]
    public var learningRate: Float
    public let alpha: Float, eps: Float
    var square: [Tensor]

    public init(_ parameters: [Parameter], learningRate: Float = 1e-2, alpha: Float = 0.99, eps: Float = 1e-8) {
        self.parameters = parameters
        self.learningRate = learningRate
        self.alpha = alpha
        self.eps = eps
        square = parameters.map { Tensor.zeros($0.shape) }
    }

    public func step() {
        let a = alpha, e = eps, lr = learningRate
        forEachGradient(parameters) { i, p, g, n in
            square[i].withUnsafeMutableBufferPointer { sb in
                for k in 0..<n {
                    sb[k] = a * sb[k] + (1 - a) * g[k] * g[k]
                    p[k] -= lr * g[k] / (sb[k].squareRoot() + e)
                }
            }
        }
    }

    public func stateDict() -> [(String, Tensor)] { parameters.indices.map { ("state.\($0).square_avg", square[$0]) } }

    public func loadStateDict(_ values: [String: Tensor], prefix: String = "") throws {
        for i in parameters.indices { square[i] = try loadSlot(values, prefix + "state.\(i).square_avg", shape: parameters[i].shape) }
    }
}

