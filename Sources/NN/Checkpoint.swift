import Engine
import Foundation

/// One safetensors file holding models, optimizer states and training state.
///
/// Tensor names are `<prefix>.<state_dict name>`: a generator saved under `generator` has
/// `generator.0.weight`, … so `{k.removeprefix("generator."): v}` loads into the equivalent
/// PyTorch module with `load_state_dict`. Optimizer state sits under `<prefix>.state.<i>.…`.
/// Metadata holds strings: JSON configuration, counters, random-generator states (as decimal
/// strings, since JSON numbers lose 64-bit integers). Written atomically.
public struct Checkpoint {
    public var file = SafeTensors()

    public init() {}

    public var metadata: [String: String] {
        get { file.metadata }
        set { file.metadata = newValue }
    }

    public mutating func add(_ module: Module, as prefix: String) {
        for (name, t) in module.stateDict() { file.tensors["\(prefix).\(name)"] = t }
        for (name, b) in module.namedBuffers() where b.isInteger { file.dtypes["\(prefix).\(name)"] = .i64 }
    }

    public mutating func add(_ optimizer: Optimizer, as prefix: String) {
        for (name, t) in optimizer.stateDict() { file.tensors["\(prefix).\(name)"] = t }
    }

    public mutating func setRandomState(_ name: String, _ g: RandomGenerator) {
        metadata["rng.\(name)"] = "\(g.seed):\(g.counter)"
    }

    public func randomState(_ name: String) throws -> RandomGenerator {
        guard let s = metadata["rng.\(name)"] else { throw StateDictError(problems: ["missing random state rng.\(name)"]) }
        let parts = s.split(separator: ":")
        guard parts.count == 2, let seed = UInt64(parts[0]), let counter = UInt64(parts[1]) else {
            throw StateDictError(problems: ["random state rng.\(name) is not seed:counter (\(s))"])
        }
        return RandomGenerator(seed: seed, counter: counter)
    }

    public func load(into module: Module, from prefix: String) throws {
        let scoped = file.tensors.filter { $0.key.hasPrefix(prefix + ".") }
        try module.loadStateDict(scoped, prefix: prefix + ".")
    }

    public func load(into optimizer: Optimizer, from prefix: String) throws {
        try optimizer.loadStateDict(file.tensors, prefix: prefix + ".")
    }

    public func write(to path: String) throws { try file.write(to: path) }

    public static func read(path: String) throws -> Checkpoint {
        var c = Checkpoint()
        c.file = try SafeTensors.read(path: path)
        return c
    }
}
