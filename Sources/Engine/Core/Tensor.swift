/// An n-dimensional Float32 array (images are NCHW) that can take part in automatic
/// differentiation.
///
/// `Tensor` has value semantics: copies share storage until one is mutated. When any input of an
/// op requires a gradient (and grad mode is on), the result records a `GradNode` so that
/// `backward()` and `gradients(of:wrt:)` can run reverse mode through it.
public struct Tensor {
    public private(set) var shape: [Int]
    @usableFromInline var storage: TensorStorage
    /// The autograd node; `nil` for constants and detached tensors.
    var node: GradNode?

    /// Wraps `storage` without copying. `storage.count` must equal the product of `shape`.
    init(shape: [Int], storage: TensorStorage, node: GradNode? = nil) {
        precondition(shape.allSatisfy { $0 >= 0 }, "negative dimension in shape \(shape)")
        precondition(Shape.count(shape) == storage.count,
                     "shape \(shape) does not hold \(storage.count) elements")
        self.shape = shape
        self.storage = storage
        self.node = node
    }

    /// Uninitialized tensor for kernels that write every element.
    init(uninitializedShape shape: [Int]) {
        self.init(shape: shape, storage: TensorStorage(count: Shape.count(shape)))
    }

    public var count: Int { storage.count }
    public var rank: Int { shape.count }

    // MARK: creation

    public init(shape: [Int], repeating value: Float) {
        self.init(uninitializedShape: shape)
        storage.base.update(repeating: value, count: count)
    }

    public init(shape: [Int], _ values: [Float]) {
        precondition(Shape.count(shape) == values.count,
                     "shape \(shape) needs \(Shape.count(shape)) values, got \(values.count)")
        self.init(uninitializedShape: shape)
        values.withUnsafeBufferPointer { storage.base.update(from: $0.baseAddress!, count: values.count) }
    }

    /// A tensor whose every element `body` writes (the storage starts uninitialized: no fill
    /// that the writer would overwrite).
    public init(shape: [Int], initializingWith body: (UnsafeMutableBufferPointer<Float>) throws -> Void) rethrows {
        self.init(uninitializedShape: shape)
        try body(storage.buffer)
    }

    public init(_ values: [Float]) { self.init(shape: [values.count], values) }

    public init(scalar: Float) { self.init(shape: [], [scalar]) }

    public static func zeros(_ shape: [Int]) -> Tensor { Tensor(shape: shape, repeating: 0) }
    public static func ones(_ shape: [Int]) -> Tensor { Tensor(shape: shape, repeating: 1) }
    public static func full(_ shape: [Int], _ value: Float) -> Tensor { Tensor(shape: shape, repeating: value) }

    /// `[start, start + step, ...)` below `end`, like `torch.arange`.
    public static func arange(_ start: Float, _ end: Float, step: Float = 1) -> Tensor {
        precondition(step != 0, "arange step must not be zero")
        let n = Swift.max(0, Int(((end - start) / step).rounded(.up)))
        let t = Tensor(uninitializedShape: [n])
        for i in 0..<n { t.storage.base[i] = start + Float(i) * step }
        return t
    }

    public static func randn(_ shape: [Int], generator: inout RandomGenerator) -> Tensor {
        let t = Tensor(uninitializedShape: shape)
        generator.fillNormal(t.storage.buffer)
        return t
    }

    public static func rand(_ shape: [Int], low: Float = 0, high: Float = 1,
                            generator: inout RandomGenerator) -> Tensor {
        let t = Tensor(uninitializedShape: shape)
        generator.fillUniform(t.storage.buffer, low: low, high: high)
        return t
    }

    // MARK: element access

    /// A copy of the elements in row-major order.
    public var scalars: [Float] { Array(storage.buffer) }

    /// The single element of a one-element tensor.
    public var item: Float {
        precondition(count == 1, "item needs a one-element tensor, shape is \(shape)")
        return storage.base[0]
    }

    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try body(UnsafeBufferPointer(storage.buffer))
    }

    /// Mutable access to the elements; copies the storage first when it is shared.
    public mutating func withUnsafeMutableBufferPointer<R>(
        _ body: (UnsafeMutableBufferPointer<Float>) throws -> R
    ) rethrows -> R {
        _ = unsafeMutableElements()
        return try body(storage.buffer)
    }

    /// The elements' address for a kernel that outlives one closure (an optimizer updating all
    /// its tensors in one parallel pass), after making the storage unshared as
    /// `withUnsafeMutableBufferPointer` does. Valid while this tensor keeps its storage.
    public mutating func unsafeMutableElements() -> UnsafeMutablePointer<Float> {
        if !isKnownUniquelyReferenced(&storage) { storage = TensorStorage(copying: storage) }
        return storage.base
    }

    /// The elements' address, read-only; valid while this tensor is alive.
    public var unsafeElements: UnsafePointer<Float> { UnsafePointer(storage.base) }

    /// The same values with a new shape and no copy; not recorded for autograd.
    func viewing(_ newShape: [Int]) -> Tensor { Tensor(shape: newShape, storage: storage) }
}

extension Tensor: CustomStringConvertible {
    public var description: String {
        let shown = scalars.prefix(8).map { String($0) }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(shown)\(count > 8 ? ", ..." : "")])"
    }
}
