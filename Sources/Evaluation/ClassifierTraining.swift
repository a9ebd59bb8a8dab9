import Datasets
import Engine
import NN

/// Trains a `LeNet` with Adam and softmax cross-entropy; reports test accuracy per epoch.
public struct ClassifierTraining {
    public struct EpochReport: Sendable {
        public let epoch: Int
        public let trainLoss: Float
        public let testAccuracy: Float
        public let seconds: Double
    }

    public let train: ImageDataset
    public let test: ImageDataset
    public var batchSize = 64
    public var learningRate: Float = 1e-3
    public var seed: UInt64 = 0

    public init(train: ImageDataset, test: ImageDataset) {
        self.train = train
        self.test = test
    }

    /// Fraction of `data` that `model` classifies correctly (eval mode, no graph).
    public static func accuracy(_ model: LeNet, on data: ImageDataset, batchSize: Int = 500) -> Float {
        model.eval()
        defer { model.train() }
        let loader = BatchLoader(data, batchSize: batchSize, scaling: .unit, shuffle: false, dropLast: false)
        var correct = 0
        withoutGrad {
            let order = Array(0..<data.count)
            for b in 0..<loader.batchesPerEpoch {
                let (x, labels) = loader.batch(b, order: order)
                let logits = model(x).scalars
                let c = model.classes
                for (i, label) in labels.enumerated() {
                    let row = logits[(i * c)..<((i + 1) * c)]
                    if row.firstIndex(of: row.max()!)! - i * c == label { correct += 1 }
                }
            }
        }
        return Float(correct) / Float(Swift.max(data.count, 1))
    }

    /// Runs `epochs` epochs; `progress(step, stepsPerEpoch, loss)` is called after every step.
    public func run(epochs: Int, model: LeNet, random: RandomSource,
                    progress: (Int, Int, Int, Float) -> Void = { _, _, _, _ in },
                    epochDone: (EpochReport) -> Void = { _ in }) -> [EpochReport] {
        let loader = BatchLoader(train, batchSize: batchSize, scaling: .unit)
        let optimizer = Adam(model.parameters, learningRate: learningRate)
        var shuffle = RandomGenerator(seed: seed &+ 1)
        var reports: [EpochReport] = []
        model.train()
        for epoch in 1...epochs {
            let start = Clock.now()
            let order = loader.order(generator: &shuffle)
            var lossSum: Float = 0
            for step in 0..<loader.batchesPerEpoch {
                let (x, labels) = loader.batch(step, order: order)
                optimizer.zeroGrad()
                let loss = Loss.crossEntropy(model(x), labels: labels)
                loss.backward()
                optimizer.step()
                lossSum += loss.item
                progress(epoch, step + 1, loader.batchesPerEpoch, loss.item)
            }
            let report = EpochReport(epoch: epoch, trainLoss: lossSum / Float(loader.batchesPerEpoch),
                                     testAccuracy: ClassifierTraining.accuracy(model, on: test),
                                     seconds: Clock.now() - start)
            reports.append(report)
            epochDone(report)
        }
        return reports
    }
}

/// Monotonic seconds.
public enum Clock {
    public static func now() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
