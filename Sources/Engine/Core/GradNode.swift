/// A backward rule: given the gradient flowing into an op's output `g`, the output itself `y`
/// (nil unless the op was recorded with `savesOutput`), and which inputs need a gradient,
/// returns one gradient per input (`nil` where not needed).
///
/// Rules are written with differentiable `Tensor` ops. When the backward pass runs with
/// `createGraph`, those ops are recorded too, which is all second order needs.
typealias GradRule = (_ g: Tensor, _ y: Tensor?, _ needs: [Bool]) -> [Tensor?]

/// One recorded op (or a leaf that requires grad) in the define-by-run graph.
final class GradNode {
    let name: String
    let shape: [Int]
    let isLeaf: Bool
    var inputs: [GradNode?]
    var rule: GradRule?
    /// The op's output storage, kept only for rules that need `y` (tanh, sigmoid, exp, ...).
    /// Holding the storage rather than the `Tensor` avoids a node → tensor → node cycle.
    var savedOutput: TensorStorage?
    /// Accumulated gradient of a leaf (PyTorch's `.grad`).
    var grad: Tensor?
    /// A backward pass's marks and the gradient summed so far from the consumers it has run
    /// (`Autograd`; never read outside a pass).
    var visitedIn = 0, neededIn = 0
    var pendingGrad: Tensor?

    init(leafShape shape: [Int]) {
        name = "leaf"
        self.shape = shape
        isLeaf = true
        inputs = []
    }

    init(name: String, shape: [Int], inputs: [GradNode?], rule: @escaping GradRule, savedOutput: TensorStorage?) {
        self.name = name
        self.shape = shape
        isLeaf = false
        self.inputs = inputs
        self.rule = rule
        self.savedOutput = savedOutput
    }

    /// Set when a backward pass freed this op's part of the graph: what it needed is gone, so a
    /// later pass that reaches it could only return wrong (zero) gradients.
    private(set) var isReleased = false

    /// Drops what the backward pass needed so the graph's memory is returned.
    func release() {
        if !isLeaf { isReleased = true }
        inputs = []
        rule = nil
        savedOutput = nil
    }
}

/// Whether ops record the graph. Off inside `withoutGrad` and during a backward pass that does
/// not create a graph.
public enum GradMode {
    nonisolated(unsafe) static var isEnabled = true

    public static var enabled: Bool { isEnabled }
}

/// Runs `body` without recording any graph (PyTorch's `torch.no_grad()`).
public func withoutGrad<R>(_ body: () throws -> R) rethrows -> R {
    let saved = GradMode.isEnabled
    GradMode.isEnabled = false
    defer { GradMode.isEnabled = saved }
    return try body()
}

extension Tensor {
    /// True when gradients flow to or through this tensor.
    public var requiresGrad: Bool {
        get { node != nil }
        set {
            if newValue {
                if node == nil { node = GradNode(leafShape: shape) }
            } else {
                node = nil
            }
        }
    }

    /// Marks this tensor as a leaf that requires grad (returns the marked copy).
    public func requiringGrad() -> Tensor {
        var t = self
        t.node = GradNode(leafShape: shape)
        return t
    }

    public var isLeaf: Bool { node?.isLeaf ?? true }

    /// The gradient accumulated by `backward()` into this leaf, like PyTorch's `.grad`.
    public var grad: Tensor? {
        get { node?.grad }
        nonmutating set { node?.grad = newValue }
    }

    /// Resets the accumulated gradient (PyTorch's `zero_grad(set_to_none=True)`).
    public func zeroGrad() { node?.grad = nil }

    /// The same values cut off from the graph.
    public func detached() -> Tensor { Tensor(shape: shape, storage: storage) }

    /// Records `self` as the output of an op on `inputs` when any of them requires grad.
    ///
    /// The inputs' array and the rule are built only when the op is recorded: most ops run
    /// unrecorded (a backward pass's own ops, inference), and building both anyway was two heap
    /// allocations and a handful of retains: ~60 of the ~210 ns a 4-element addition took
    /// without a graph (docs/performance-log.md, session 30).
    @inline(__always)
    func recorded(_ name: String, _ inputs: @autoclosure () -> [Tensor], savesOutput: Bool = false,
                  _ rule: @autoclosure () -> GradRule) -> Tensor {
        OpProfiler.op(name)
        guard GradMode.isEnabled else { return self }
        return withNode(name, inputs(), savesOutput: savesOutput, rule)
    }

    private func withNode(_ name: String, _ inputs: [Tensor], savesOutput: Bool, _ rule: () -> GradRule) -> Tensor {
        guard inputs.contains(where: { $0.node != nil }) else { return self }
        var out = self
        out.node = GradNode(name: name, shape: shape, inputs: inputs.map(\.node), rule: rule(),
                            savedOutput: savesOutput ? storage : nil)
        return out
    }
}
