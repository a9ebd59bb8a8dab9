import ArgumentParser
import Engine

let ganVersion = "0.1.0"

struct GanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gan",
        abstract: "Train and evaluate GANs on MNIST-style images, in Swift, on the CPU.",
        discussion: """
        Examples:
          gan train                          the Keras tutorial DCGAN (~6 minutes)
          gan sample --checkpoint C --out grid.png
          gan models                         the models and losses, with their origins
          gan classifier train --dataset mnist
                                             the evaluation classifier (≥ 99 %)
          gan bench engine --json            the kernels against the machine's sgemm
        """,
        version: "gan \(ganVersion)",
        subcommands: [TrainCommand.self, SampleCommand.self, EvalCommand.self, PlotCommand.self, InterpolateCommand.self, ModelsCommand.self, DistancesCommand.self, DataCommand.self, ClassifierCommand.self, BenchCommand.self]
    )
}

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure speed (build with -c release).",
        subcommands: [BenchEngineCommand.self, BenchTrainCommand.self, BenchGenerateCommand.self]
    )
}
