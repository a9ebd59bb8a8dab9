import ArgumentParser
import Datasets
import Engine
import Evaluation
import Foundation
import NN

struct ClassifierCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "classifier",
        abstract: "Train the LeNet-style classifiers used for evaluation.",
        subcommands: [ClassifierTrainCommand.self]
    )
}

struct ClassifierTrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Train a LeNet-style CNN, print test accuracy after each epoch, save a checkpoint.",
        discussion: """
        Examples:
          gan classifier train --dataset mnist
          gan classifier train --dataset fashion-mnist --epochs 8 \\
            --out fashion.safetensors
        """
    )

    @Option(help: "mnist, fashion-mnist, or a directory of IDX files.") var dataset = "mnist"
    @Option(help: "Passes over the training set.") var epochs = 5
    @Option(help: "Random seed for initialization, shuffling and dropout.") var seed: UInt64 = 0
    @Option(name: .customLong("batch-size"), help: "Images per step.") var batchSize = 64
    @Option(help: "Adam learning rate.") var lr: Float = 1e-3
    @Option(help: "Where to write the checkpoint (safetensors).") var out: String?

    func validate() throws {
        guard epochs > 0 else { throw ValidationError("--epochs must be positive, got \(epochs)") }
        guard batchSize > 0 else { throw ValidationError("--batch-size must be positive, got \(batchSize)") }
        guard lr > 0, lr.isFinite else { throw ValidationError("--lr must be a positive number, got \(lr)") }
    }

    func run() throws {
        let log: (String) -> Void = { FileHandle.standardError.write(($0 + "\n").data(using: .utf8)!) }
        let train = try DatasetStore.load(dataset, split: .train, log: log)
        let test = try DatasetStore.load(dataset, split: .test, log: log)
        let outPath = out ?? "classifier-\((dataset as NSString).lastPathComponent).safetensors"
        let random = RandomSource(seed: seed)
        let model = LeNet(classes: max(train.classes, test.classes), random: random)
        var training = ClassifierTraining(train: train, test: test)
        training.batchSize = batchSize
        training.learningRate = lr
        training.seed = seed
        print("Training LeNet on \(dataset): \(train.count) train / \(test.count) test images, \(model.parameterCount) parameters, \(BLASInfo.kernel) BLAS")
        var bar: ProgressBar?
        let reports = training.run(epochs: epochs, model: model, random: random, progress: { epoch, step, total, loss in
            if step == 1 { bar = ProgressBar(total: total, label: "epoch \(epoch)/\(epochs)") }
            bar?.update(step, items: step * batchSize, extra: String(format: "loss %.4f", loss))
        }, epochDone: { r in
            print(String(format: "epoch %d: train loss %.4f, test accuracy %.2f %%, %.1f s", r.epoch, r.trainLoss, r.testAccuracy * 100, r.seconds))
            fflush(stdout)
        })
        var ck = Checkpoint()
        ck.add(model, as: "model")
        let final = reports.last!
        ck.metadata["kind"] = "lenet-classifier"
        ck.metadata["dataset"] = dataset
        ck.metadata["classes"] = "\(model.classes)"
        ck.metadata["test_accuracy"] = String(format: "%.4f", final.testAccuracy)
        ck.metadata["command"] = "gan classifier train --dataset \(dataset) --epochs \(epochs) --seed \(seed) --batch-size \(batchSize) --lr \(lr)"
        try ck.write(to: outPath)
        print("Saved \(outPath) (test accuracy \(String(format: "%.2f", final.testAccuracy * 100)) %)")
    }
}
