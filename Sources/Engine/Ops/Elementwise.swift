import CSupport
// Elementwise ops with NumPy broadcasting. Gradient rules live in GradientRules.swift.

extension Tensor {
    /// Strides that read `self` as if it had `outShape` (0 along broadcast dimensions).
    func broadcastStrides(to outShape: [Int]) -> [Int] {
        let s = Shape.strides(shape)
        let lead = outShape.count - shape.count
        return (0..<outShape.count).map { d in
            d < lead ? 0 : (shape[d - lead] == 1 ? 0 : s[d - lead])
        }
    }

    static func zipped<K: BinaryKernel>(_ a: Tensor, _ b: Tensor, _ k: K) -> Tensor {
        if a.shape == b.shape {
            let out = Tensor(uninitializedShape: a.shape)
            let n = a.count
            Parallel.forChunks(n) { r in
                Kernels.row1(k, a.storage.base + r.lowerBound, 1, b.storage.base + r.lowerBound, 1,
                             out.storage.base + r.lowerBound, r.count)
            }
            return out
        }
        guard let shape = Shape.broadcast(a.shape, b.shape) else {
            preconditionFailure("shapes \(a.shape) and \(b.shape) do not broadcast")
        }
        let out = Tensor(uninitializedShape: shape)
        Kernels.zip(k, a.storage.base, a.broadcastStrides(to: shape), b.storage.base, b.broadcastStrides(to: shape),
                    out.storage.base, shape)
        return out
    }

    func mapped<K: UnaryKernel>(_ k: K) -> Tensor {
        let out = Tensor(uninitializedShape: shape)
        Kernels.map(k, storage.base, out.storage.base, count)
        return out
    }

    // MARK: arithmetic

    public static func + (a: Tensor, b: Tensor) -> Tensor {
        zipped(a, b, AddK()).recorded("add", [a, b], Rules.add(a.shape, b.shape))
    }
    public static func - (a: Tensor, b: Tensor) -> Tensor {
        zipped(a, b, SubK()).recorded("sub", [a, b], Rules.sub(a.shape, b.shape))
    }
    public static func * (a: Tensor, b: Tensor) -> Tensor {
        zipped(a, b, MulK()).recorded("mul", [a, b], Rules.mul(a, b))
    }
    public static func / (a: Tensor, b: Tensor) -> Tensor {
        zipped(a, b, DivK()).recorded("div", [a, b], Rules.div(a, b))
    }

    /// scale · x + shift, the primitive behind every tensor–scalar op.
    public func affine(scale: Float, shift: Float) -> Tensor {
        mapped(AffineK(a: scale, b: shift)).recorded("affine", [self], Rules.affine(scale))
    }

    public static prefix func - (x: Tensor) -> Tensor { x.affine(scale: -1, shift: 0) }
    public static func + (a: Tensor, s: Float) -> Tensor { a.affine(scale: 1, shift: s) }
    public static func + (s: Float, a: Tensor) -> Tensor { a.affine(scale: 1, shift: s) }
    public static func - (a: Tensor, s: Float) -> Tensor { a.affine(scale: 1, shift: -s) }
    public static func - (s: Float, a: Tensor) -> Tensor { a.affine(scale: -1, shift: s) }
    public static func * (a: Tensor, s: Float) -> Tensor { a.affine(scale: s, shift: 0) }
    public static func * (s: Float, a: Tensor) -> Tensor { a.affine(scale: s, shift: 0) }
    public static func / (a: Tensor, s: Float) -> Tensor { a.affine(scale: 1 / s, shift: 0) }
    public static func / (s: Float, a: Tensor) -> Tensor { a.pow(-1) * s }

    public static func += (a: inout Tensor, b: Tensor) { a = a + b }
    public static func -= (a: inout Tensor, b: Tensor) { a = a - b }
    public static func *= (a: inout Tensor, b: Tensor) { a = a * b }

    // MARK: unary math

    public func exp() -> Tensor { mapped(ExpK()).recorded("exp", [self], savesOutput: true, Rules.exp()) }
    public func log() -> Tensor { mapped(LogK()).recorded("log", [self], Rules.log(self)) }
    public func sqrt() -> Tensor { mapped(SqrtK()).recorded("sqrt", [self], savesOutput: true, Rules.sqrt()) }
    public func pow(_ p: Float) -> Tensor {
        if p == 2 { return square() }
        return mapped(PowK(p: p)).recorded("pow", [self], Rules.pow(self, p))
    }
    public func square() -> Tensor { Tensor.zipped(self, self, MulK()).recorded("square", [self], Rules.square(self)) }
    public func abs() -> Tensor { mapped(AbsK()).recorded("abs", [self], Rules.abs(self)) }
    /// −1, 0 or 1; a constant for autograd.
    public func sign() -> Tensor { mapped(SignK()) }
    public func clamp(min lo: Float = -.infinity, max hi: Float = .infinity) -> Tensor {
        mapped(ClampK(lo: lo, hi: hi)).recorded("clamp", [self], Rules.clamp(self, lo, hi))
    }
    public func minimum(_ other: Tensor) -> Tensor {
        Tensor.zipped(self, other, MinK()).recorded("minimum", [self, other], Rules.minimum(self, other))
    }
    public func maximum(_ other: Tensor) -> Tensor {
        Tensor.zipped(self, other, MaxK()).recorded("maximum", [self, other], Rules.maximum(self, other))
    }

    // MARK: comparisons (constant 0/1 masks)

    public func compared(_ op: Comparison, _ other: Tensor) -> Tensor { Tensor.zipped(self, other, CompareK(op: op)) }
    public func compared(_ op: Comparison, _ s: Float) -> Tensor { Tensor.zipped(self, Tensor(scalar: s), CompareK(op: op)) }
    public static func .< (a: Tensor, b: Tensor) -> Tensor { a.compared(.less, b) }
    public static func .<= (a: Tensor, b: Tensor) -> Tensor { a.compared(.lessEqual, b) }
    public static func .> (a: Tensor, b: Tensor) -> Tensor { a.compared(.greater, b) }
    public static func .>= (a: Tensor, b: Tensor) -> Tensor { a.compared(.greaterEqual, b) }
    public static func .== (a: Tensor, b: Tensor) -> Tensor { a.compared(.equal, b) }
    public static func .!= (a: Tensor, b: Tensor) -> Tensor { a.compared(.notEqual, b) }
    public static func .< (a: Tensor, s: Float) -> Tensor { a.compared(.less, s) }
    public static func .> (a: Tensor, s: Float) -> Tensor { a.compared(.greater, s) }

    /// `a` where `condition` is nonzero, else `b` (all broadcast to one shape).
    public static func select(_ condition: Tensor, _ a: Tensor, _ b: Tensor) -> Tensor {
        guard let ab = Shape.broadcast(a.shape, b.shape), let shape = Shape.broadcast(ab, condition.shape) else {
            preconditionFailure("where: shapes \(condition.shape), \(a.shape), \(b.shape) do not broadcast")
        }
        let c = condition.expandedConstant(shape), x = a.expandedConstant(shape), y = b.expandedConstant(shape)
        let out = Tensor(uninitializedShape: shape)
        let pc = c.storage.base, px = x.storage.base, py = y.storage.base, po = out.storage.base
        Parallel.forChunks(out.count) { r in for i in r { po[i] = pc[i] != 0 ? px[i] : py[i] } }
        return out.recorded("where", [a, b], Rules.select(condition, a.shape, b.shape))
    }

    /// Materializes a broadcast without recording (for kernels that want equal shapes).
    func expandedConstant(_ shape: [Int]) -> Tensor {
        if self.shape == shape { return self }
        let out = Tensor(uninitializedShape: shape)
        Kernels.copyStrided(storage.base, broadcastStrides(to: shape), out.storage.base, Shape.strides(shape), shape)
        return out
    }

    // MARK: activations

    public func relu() -> Tensor { mapped(LeakyReluK(alpha: 0)).recorded("relu", [self], Rules.leakyRelu(self, 0)) }
    public func leakyRelu(_ alpha: Float = 0.01) -> Tensor {
        mapped(LeakyReluK(alpha: alpha)).recorded("leakyRelu", [self], Rules.leakyRelu(self, alpha))
    }
    public func sigmoid() -> Tensor {
        mappedByTranscendentalLoop { gan_sigmoid($0, $1, $2) }.recorded("sigmoid", [self], savesOutput: true, Rules.sigmoid())
    }
    public func tanh() -> Tensor {
        mappedByTranscendentalLoop { gan_tanh($0, $1, $2) }.recorded("tanh", [self], savesOutput: true, Rules.tanh())
    }

    /// A C loop with its own exp (CSupport's sigmoid and tanh) over every value. The exp makes it
    /// compute-bound, so two threads pay from far fewer elements than for a copy: the mlp's
    /// 64 × 784 output (one thread at the default grain) made its step 1.010–1.014× faster split,
    /// three runs of `gan bench train --model mlp --alternate` with a temporary switch.
    private func mappedByTranscendentalLoop(_ loop: (UnsafePointer<Float>, UnsafeMutablePointer<Float>, Int) -> Void) -> Tensor {
        let out = Tensor(uninitializedShape: shape)
        let (x, y) = (storage.base, out.storage.base)
        Parallel.forChunks(count, grain: 1 << 13) { r in loop(x + r.lowerBound, y + r.lowerBound, r.count) }
        return out
    }
    public func softplus() -> Tensor { mapped(SoftplusK()).recorded("softplus", [self], Rules.softplus(self)) }
    /// log σ(x) = −softplus(−x), stable for large |x|.
    public func logSigmoid() -> Tensor { -((-self).softplus()) }
}

