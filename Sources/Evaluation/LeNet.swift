import Engine
import NN

/// The project's LeNet-style classifier for 28×28 images: two conv + max-pool blocks and two
/// dense layers. Its 128-unit penultimate layer provides the features for Fréchet distance and
/// the other sample-quality metrics.
///
/// state_dict names (a PyTorch `nn.Sequential` of the same layers loads them):
/// `features.0` Conv2d(1, 32, 5, padding 2), `features.3` Conv2d(32, 64, 5, padding 2),
/// `head.1` Linear(3136, 128), `head.4` Linear(128, classes).
public final class LeNet: Module {
    public let features: Sequential
    public let head: Sequential
    public let classes: Int

    public init(classes: Int = 10, random: RandomSource) {
        self.classes = classes
        var g = random.generator
        features = Sequential(
            Conv2d(1, 32, kernel: 5, padding: .symmetric(2), generator: &g), ReLU(), MaxPool2d(),
            Conv2d(32, 64, kernel: 5, padding: .symmetric(2), generator: &g), ReLU(), MaxPool2d()
        )
        head = Sequential(
            Flatten(), Linear(64 * 7 * 7, 128, generator: &g), ReLU(), Dropout(0.5, random: random),
            Linear(128, classes, generator: &g)
        )
        random.generator = g
    }

    override public var children: [(String, Module)] { [("features", features), ("head", head)] }

    /// The 128 activations before the last layer (after ReLU).
    public func penultimate(_ x: Tensor) -> Tensor {
        let h = head.layers
        return h[2](h[1](h[0](features(x))))
    }

    override public func callAsFunction(_ x: Tensor) -> Tensor { head(features(x)) }
}

/// 2×2 max pooling (nn.MaxPool2d(2)).
public final class MaxPool2d: Module {
    override public func callAsFunction(_ x: Tensor) -> Tensor { x.maxPool2d(2) }
}
