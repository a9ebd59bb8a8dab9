import ArgumentParser
import Engine

let ganVersion = "0.1.0"

struct GanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gan",
        abstract: "Train and evaluate GANs on MNIST-style images, in Swift, on the CPU.",
        discussion: """
        Example:
          gan bench engine --json      measure the engine's kernels against the machine's sgemm
        """,
        version: "gan \(ganVersion)",
        subcommands: [BenchCommand.self]
    )
}

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure speed (build with -c release).",
        subcommands: [BenchEngineCommand.self]
    )
}
