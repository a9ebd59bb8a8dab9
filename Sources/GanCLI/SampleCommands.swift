import ArgumentParser
import Engine
import Foundation
import GAN

struct SampleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sample",
        abstract: "Draw images from a trained generator.",
        discussion: """
        --out decides the format: a .png file is a grid, a directory (ending in /) gets
        one PNG per image, a .npy file holds uint8 images N×28×28 (or float32 in the
        model's range with --float). --z reads latent vectors from a float32 .npy
        [N, latent] instead of drawing them.

        Examples:
          gan sample --checkpoint runs/dcgan/checkpoints/step-00002811.safetensors \\
            --out grid.png
          gan sample --checkpoint C --count 10000 --seed 1 --out samples.npy
          gan sample --checkpoint runs/cdcgan/checkpoints/… --class 7 --out sevens.png
        """
    )

    @Option(help: "A checkpoint written by gan train.") var checkpoint: String
    @Option(help: "Number of images.") var count = 64
    @Option(help: "Seed of the latent vectors.") var seed: UInt64 = 0
    @Option(name: .customLong("class"), help: "Conditional models: the class to draw (default: 0–9 in turn).") var classLabel: Int?
    @Flag(help: "Use the EMA generator (trained with --ema).") var ema = false
    @Option(help: "Latent vectors from a float32 .npy file [N, latent].") var z: String?
    @Flag(name: .customLong("float"), help: "With a .npy output: float32 in the model's output range.") var asFloat = false
    @Option(help: "Output: grid.png, DIR/ or FILE.npy.") var out: String
    @Option(help: "Columns of a grid.") var columns = 8

    func validate() throws {
        guard count > 0 else { throw ValidationError("--count must be positive, got \(count)") }
        guard columns > 0 else { throw ValidationError("--columns must be positive, got \(columns)") }
        if let c = classLabel, !(0..<10).contains(c) { throw ValidationError("--class must be 0 to 9, got \(c)") }
        guard out.hasSuffix(".png") || out.hasSuffix(".npy") || out.hasSuffix("/") else {
            throw ValidationError("--out must be a .png file, a .npy file or a directory ending in /, got \(out)")
        }
        if asFloat && !out.hasSuffix(".npy") { throw ValidationError("--float applies to .npy output only") }
    }

    func run() throws {
        let g = try SavedGenerator(path: checkpoint, ema: ema)
        if classLabel != nil && !g.spec.conditional {
            throw optionError("--class needs a conditional model (cgan, cdcgan); \(checkpoint) holds \(g.spec.name)", command: "sample")
        }
        var latents: Tensor
        if let z {
            let a = try NumpyFile.read(path: z)
            guard a.dtype == .float32, a.shape.count == 2, a.shape[1] == g.latentDim else {
                throw FileFormatError(z, "--z needs float32 latent vectors of shape [N, \(g.latentDim)] for \(g.spec.name), found \(a.dtype.rawValue) \(a.shape)")
            }
            latents = Tensor(shape: a.shape, a.values)
        } else {
            latents = g.drawLatent(count, seed: seed)
        }
        let n = latents.shape[0]
        let labels: [Int]? = g.spec.conditional ? (0..<n).map { classLabel ?? $0 % 10 } : nil
        let images = g.generate(latents, labels: labels)
        let range = g.spec.scaling.range
        if out.hasSuffix(".png") {
            try PNGImage.grid(images, range: range, columns: columns, scale: 2).write(to: out)
        } else if out.hasSuffix(".npy") {
            if asFloat {
                try NumpyFile.write(images.reshaped([n, 28, 28]), dtype: .float32, to: out)
            } else {
                let bytes = images.scalars.map { Float(PNGImage.quantize($0, range)) }
                try AtomicFile.write(NumpyFile.encode(shape: [n, 28, 28], dtype: .uint8, values: bytes), to: out)
            }
        } else {
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
            for k in 0..<n {
                try PNGImage.grid(images.sliced(axis: 0, k..<(k + 1)), range: range, columns: 1, padding: 0)
                    .write(to: out + String(format: "%05d.png", k))
            }
        }
        print("Wrote \(n) images from \(g.spec.name) to \(out)")
    }
}

struct InterpolateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "interpolate",
        abstract: "Spherical interpolation between the latent vectors of two seeds, as a strip of images.",
        discussion: """
        Examples (C: a checkpoint, e.g. runs/dcgan/checkpoints/step-00001874.safetensors):
          gan interpolate --checkpoint C --out strip.png
          gan interpolate --checkpoint C --from 3 --to 8 --steps 16 --out strip.png
        """
    )

    @Option(help: "A checkpoint written by gan train.") var checkpoint: String
    @Option(name: .customLong("from"), help: "Seed of the first latent vector.") var fromSeed: UInt64 = 0
    @Option(name: .customLong("to"), help: "Seed of the last latent vector.") var toSeed: UInt64 = 1
    @Option(help: "Images in the strip, ends included.") var steps = 10
    @Option(name: .customLong("class"), help: "Conditional models: the class to draw.") var classLabel: Int = 0
    @Flag(help: "Use the EMA generator.") var ema = false
    @Option(help: "Output PNG.") var out: String

    func validate() throws {
        guard steps >= 2 else { throw ValidationError("--steps must be at least 2, got \(steps)") }
        guard out.hasSuffix(".png") else { throw ValidationError("--out must be a .png file, got \(out)") }
        guard (0..<10).contains(classLabel) else { throw ValidationError("--class must be 0 to 9, got \(classLabel)") }
    }

    func run() throws {
        let g = try SavedGenerator(path: checkpoint, ema: ema)
        let a = g.drawLatent(1, seed: fromSeed).reshaped([-1]), b = g.drawLatent(1, seed: toSeed).reshaped([-1])
        let path = Tensor.stack((0..<steps).map { slerp(a, b, Float($0) / Float(steps - 1)) })
        let images = g.generate(path, labels: g.spec.conditional ? Array(repeating: classLabel, count: steps) : nil)
        try PNGImage.grid(images, range: g.spec.scaling.range, columns: steps, scale: 2).write(to: out)
        print("Wrote an interpolation of \(steps) images to \(out)")
    }
}

struct ModelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models",
        abstract: "List the models and losses with their origin and defaults."
    )

    func run() {
        print("Models (gan train --model NAME):\n")
        for m in ModelZoo.all {
            print("  \(m.name)\(m.name == "dcgan" ? "  (default)" : "")")
            print("    origin:   \(m.origin)")
            print("    layers:   \(m.summary)")
            print("    defaults: latent \(m.latentDim) (\(m.latent.rawValue)), data \(m.scaling.rawValue), loss \(m.defaultLoss.rawValue), batch \(m.batchSize), Adam lr \(m.learningRateG)/\(m.learningRateD) β \(m.betasG)")
            print("    padding:  \(m.paddingNote)")
            print("")
        }
        print("Losses (gan train --loss NAME):\n")
        for l in GANLossKind.allCases {
            print("  \(l.rawValue.padding(toLength: 14, withPad: " ", startingAt: 0)) \(l.summary)")
        }
    }
}

struct DistancesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "distances",
        abstract: "The WGAN paper's comparison of TV, KL, JS and earth-mover distances on two parallel lines.",
        discussion: """
        P₀ is uniform on {0} × [0, 1] and P_θ on {θ} × [0, 1]. For every θ ≠ 0 the
        supports are disjoint: TV stays 1, KL is infinite and JS stays log 2 ≈ 0.693,
        so none of them tells a generator which way to move. Only the earth-mover
        distance, |θ|, shrinks as θ → 0.
        """
    )

    func run() {
        print("theta        TV        KL        JS        EM")
        for theta in [-1.0, -0.5, -0.1, 0.0, 0.1, 0.5, 1.0] {
            let d = Distances.parallelLines(theta: theta)
            // printf right-aligns "inf" in the column like any number; %@ ignores the width on Linux.
            print(String(format: "%5.2f  %8.4f  %8.4f  %8.4f  %8.4f", theta, d.tv, d.kl, d.js, d.em))
        }
    }
}

struct PlotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plot",
        abstract: "Redraw a run's loss and discriminator-output plots from its metrics.csv.",
        discussion: """
        Example:
          gan plot --run-dir runs/dcgan
        """
    )

    @Option(name: .customLong("run-dir"), help: "A run directory written by gan train.") var runDir: String

    func run() throws {
        let dir = RunDirectory(runDir)
        let config = try? TrainConfig.load(path: dir.config)
        let probabilities = (config?.loss).flatMap(GANLossKind.init(rawValue:))?.usesProbabilities ?? true
        try TrainingRun.writePlots(dir, probabilities: probabilities)
        print("Wrote \(dir.plots)/losses.png and \(dir.plots)/d_outputs.png")
    }
}
