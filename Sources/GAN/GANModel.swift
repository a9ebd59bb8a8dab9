import Engine
import NN

/// A generator or discriminator: a `Sequential` network, optionally conditioned on a class.
/// Its state_dict names are the Sequential's own (`0.weight`, `3.running_mean`, …), so the
/// tensors load into the equivalent PyTorch `nn.Sequential` unchanged.
///
/// Conditioning (for `cgan` / `cdcgan`): the one-hot class vector is joined to a flat input
/// (z for generators, flattened images for MLP discriminators), or broadcast to `classes`
/// extra channels of an image input.
public final class Network: Module {
    public let net: Sequential
    public let classes: Int
    public let imageInput: Bool
    /// The layers take channels-last images (`ModelZoo.channelsLastCritic`): the NCHW input is
    /// permuted once on the way in.
    public let channelsLast: Bool
    /// The layers make channels-last images (`setChannelsLastGenerator`): the output is
    /// permuted back to NCHW on the way out.
    public private(set) var channelsLastOutput: Bool

    public init(_ net: Sequential, classes: Int = 0, imageInput: Bool = false, channelsLast: Bool = false) {
        self.net = net
        self.classes = classes
        self.imageInput = imageInput
        self.channelsLast = channelsLast
        channelsLastOutput = false
    }

    public var isConditional: Bool { classes > 0 }

    override public var children: [(String, Module)] { net.children }
    /// Conditioning joins each sample's own class, so it keeps the layers' per-sample property.
    override public var isPerSample: Bool { net.isPerSample }

    /// Runs the network; `labels` are required exactly when the network is conditional.
    public func callAsFunction(_ x: Tensor, labels: [Int]?) -> Tensor { output(net(input(x, labels: labels))) }

    /// Switches a generator's layers between channels-last and NCHW activations (the weights
    /// are the same either way), for `gan bench train --alternate channels-last-generator`.
    public func setChannelsLastGenerator(_ on: Bool) {
        ModelZoo.setChannelsLast(net.layers, on)
        channelsLastOutput = on
    }

    /// The layers' output as NCHW images when they make channels-last ones.
    func output(_ y: Tensor) -> Tensor {
        channelsLastOutput && y.rank == 4 ? y.toChannelsFirst() : y
    }

    /// What the first layer takes: the conditioned input, channels-last when the layers are.
    func input(_ x: Tensor, labels: [Int]?) -> Tensor {
        let c = conditioned(x, labels: labels)
        return channelsLast ? c.toChannelsLast() : c
    }

    /// The network's input: `x` with the one-hot class joined when the network is conditional.
    func conditioned(_ x: Tensor, labels: [Int]?) -> Tensor {
        guard isConditional else { return x }
        guard let labels else { preconditionFailure("a conditional network needs labels") }
        let hot = Tensor.oneHot(labels, classes: classes)
        if imageInput {
            let planes = hot.reshaped([x.shape[0], classes, 1, 1]).expanded(to: [x.shape[0], classes, x.shape[2], x.shape[3]])
            return Tensor.concat([x, planes], axis: 1)
        }
        return Tensor.concat([x.rank > 2 ? x.flattened() : x, hot], axis: 1)
    }

    override public func callAsFunction(_ x: Tensor) -> Tensor { self(x, labels: nil) }

    /// The network on `x` without a graph, `batch` samples at a time, joined: the memory of one
    /// batch instead of all of them (a dcgan generator holds 0.4 GB of activations a thousand
    /// samples). The same values as one call when the layers are per-sample (batch norm in eval mode).
    public func inBatches(_ x: Tensor, labels: [Int]?, batch: Int) -> Tensor {
        precondition(batch > 0, "batch must be positive, got \(batch)")
        precondition(labels == nil || labels!.count == x.shape[0], "\(labels?.count ?? 0) labels for \(x.shape[0]) samples")
        var parts: [Tensor] = []
        var start = 0
        while start < x.shape[0] {
            let end = Swift.min(start + batch, x.shape[0])
            let lb = labels.map { Array($0[start..<end]) }
            parts.append(withoutGrad { self(x.sliced(axis: 0, start..<end), labels: lb) })
            start = end
        }
        return parts.count == 1 ? parts[0] : Tensor.concat(parts, axis: 0)
    }
}
