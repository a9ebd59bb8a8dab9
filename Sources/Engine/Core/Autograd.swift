/// Reverse-mode differentiation over the recorded graph.
///
/// The graph is sorted iteratively (no recursion, so depth is unbounded), then each node's rule
/// runs once in reverse topological order with the sum of the gradients of all its consumers.
/// Only nodes that lead to a requested target run, and rules are told which inputs need a
/// gradient so that, say, conv2d skips its weight gradient when only the input's is wanted.
enum Autograd {
    /// Stamps a pass's marks on the nodes (`GradNode.visitedIn`, `.neededIn`) so that no pass
    /// has to clear them or keep a set of node identities: a mark from an earlier pass is stale.
    nonisolated(unsafe) private static var passes = 0

    private static func nextPass() -> Int {
        passes += 1
        return passes
    }

    static func topologicalOrder(from root: GradNode) -> [GradNode] {
        let pass = nextPass()
        var order: [GradNode] = []
        root.visitedIn = pass
        var stack: [(node: GradNode, next: Int)] = [(root, 0)]
        while !stack.isEmpty {
            let top = stack.count - 1
            let node = stack[top].node
            // PyTorch's "Trying to backward through the graph a second time".
            precondition(!node.isReleased, "backward through a graph that an earlier backward() or gradients(wrt:) already freed "
                         + "(at \(node.name)): pass retainGraph: true to the first call, or recompute the forward pass")
            let i = stack[top].next
            if i < node.inputs.count {
                stack[top].next += 1
                if let child = node.inputs[i], child.visitedIn != pass {
                    child.visitedIn = pass
                    stack.append((child, 0))
                }
            } else {
                stack.removeLast()
                order.append(node)  // children come before their consumers
            }
        }
        return order
    }

    /// Propagates `seed` from `root`. `isTarget` picks the nodes whose gradient is wanted;
    /// they are returned keyed by node identity.
    static func run(root: GradNode, seed: Tensor, isTarget: (GradNode) -> Bool,
                    createGraph: Bool, retainGraph: Bool) -> [ObjectIdentifier: (node: GradNode, grad: Tensor)] {
        let order = topologicalOrder(from: root)
        let pass = nextPass()
        for node in order where isTarget(node) || node.inputs.contains(where: { $0?.neededIn == pass }) {
            node.neededIn = pass
        }
        // Each node's gradient so far waits on the node itself until its rule runs.
        root.pendingGrad = seed
        var results: [ObjectIdentifier: (node: GradNode, grad: Tensor)] = [:]

        let savedMode = GradMode.isEnabled, savedPhase = OpProfiler.inBackward
        GradMode.isEnabled = createGraph
        OpProfiler.inBackward = true
        defer {
            GradMode.isEnabled = savedMode
            OpProfiler.inBackward = savedPhase
        }

        for node in order.reversed() {
            guard node.neededIn == pass, let g = node.pendingGrad else { continue }
            node.pendingGrad = nil
            if isTarget(node) { results[ObjectIdentifier(node)] = (node, g) }
            guard let rule = node.rule else { continue }
            let needs = node.inputs.map { $0?.neededIn == pass }
            if needs.contains(true) {
                // Only an op that saved its output gets it: a placeholder of the output's size
                // would cost every other node an allocation.
                let y = node.savedOutput.map { Tensor(shape: node.shape, storage: $0, node: node) }
                let inputGrads = rule(g, y, needs)
                OpProfiler.op(node.name)  // the rule's own time (ops it ran are charged as they run)
                for (k, input) in node.inputs.enumerated() where needs[k] {
                    guard let input, let gi = inputGrads[k] else { continue }
                    precondition(gi.shape == input.shape,
                                 "\(node.name) backward gave shape \(gi.shape) for input of shape \(input.shape)")
                    input.pendingGrad = input.pendingGrad.map { $0 + gi } ?? gi
                }
            }
            if !retainGraph { node.release() }
        }
        return results
    }
}

extension Tensor {
    /// Accumulates d(self)/d(leaf) into every leaf's `.grad`, as PyTorch's `backward()` does:
    /// gradients add up across calls until `zeroGrad()`. `gradient` defaults to ones for a
    /// one-element tensor. The graph is freed afterwards unless `retainGraph` (or `createGraph`).
    public func backward(_ gradient: Tensor? = nil, retainGraph: Bool = false, createGraph: Bool = false) {
        guard let root = node else {
            preconditionFailure("backward() on a tensor that does not require grad")
        }
        let seed = gradient ?? Tensor.ones(shape)
        precondition(seed.shape == shape, "backward gradient shape \(seed.shape) differs from \(shape)")
        let grads = Autograd.run(root: root, seed: seed, isTarget: { $0.isLeaf },
                                 createGraph: createGraph, retainGraph: retainGraph || createGraph)
        for (_, (leaf, g)) in grads {
            let value = createGraph ? g : g.detached()
            leaf.grad = leaf.grad.map { createGraph ? $0 + value : ($0 + value).detached() } ?? value
        }
        OpProfiler.op("leaf .grad", phase: .backward)
    }

    /// Gradients of `self` with respect to `inputs`, returned rather than accumulated
    /// (PyTorch's `torch.autograd.grad`). With `createGraph` the results are themselves
    /// differentiable, which is how a gradient penalty is trained. An input that `self` does
    /// not depend on gets zeros.
    public func gradients(wrt inputs: [Tensor], seed: Tensor? = nil, createGraph: Bool = false,
                          retainGraph: Bool? = nil) -> [Tensor] {
        guard let root = node else {
            preconditionFailure("gradients(wrt:) on a tensor that does not require grad")
        }
        let wanted = Set(inputs.compactMap { $0.node.map(ObjectIdentifier.init) })
        let s = seed ?? Tensor.ones(shape)
        precondition(s.shape == shape, "seed shape \(s.shape) differs from \(shape)")
        let grads = Autograd.run(root: root, seed: s, isTarget: { wanted.contains(ObjectIdentifier($0)) },
                                 createGraph: createGraph, retainGraph: retainGraph ?? createGraph)
        return inputs.map { x in
            if let n = x.node, let g = grads[ObjectIdentifier(n)]?.grad { return g }
            return Tensor.zeros(x.shape)
        }
    }
}

/// Free-function form of `Tensor.gradients(wrt:)`.
public func gradients(of output: Tensor, wrt inputs: [Tensor], createGraph: Bool = false) -> [Tensor] {
    output.gradients(wrt: inputs, createGraph: createGraph)
}
