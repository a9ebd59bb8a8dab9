// A GAN written directly with the library's parts, to read and change: the loop `gan train`
// runs for you, in the shape of PyTorch-GAN's gan.py and wgan_gp.py (fully connected G and D;
// BCE on logits with Adam β1 0.5, or the WGAN-GP critic with its gradient penalty). Build and run:
//
//   swift run -c release minimal-gan --out minimal-gan.png     # 10,000 steps, about 90 s on 2 cores
//   swift run -c release minimal-gan --loss wgan-gp --out wgan-gp.png
//
// Everything here is public API: Engine (tensors, autograd), NN (layers, losses, optimizers),
// Datasets (IDX files and batches), GAN (PNG grids).
import ArgumentParser
import Datasets
import Engine
import Foundation
import GAN
import NN

// OpenBLAS reads its kernel and thread count when it loads, so the process starts again once
// with them set (as the `gan` command does); then flush-to-zero and the engine's threads.
Runtime.relaunchIfNeeded()
Runtime.configure()

/// The two losses of the example, the original GAN's and WGAN-GP's, with their papers' Adam
/// settings and discriminator updates per generator update.
enum GANObjective: String, ExpressibleByArgument, CaseIterable {
    case bce, wganGP = "wgan-gp"

    var adam: (learningRate: Float, beta1: Float, beta2: Float) { self == .bce ? (2e-4, 0.5, 0.999) : (1e-4, 0, 0.9) }
    var criticUpdates: Int { self == .bce ? 1 : 5 }
}

struct MinimalGAN: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "minimal-gan",
        abstract: "Train a small fully connected GAN written with the swift-gan library, then draw a grid of samples.")

    @Option(help: "mnist, fashion-mnist, or a directory of IDX files.") var dataset = "mnist"
    @Option(help: "bce (non-saturating; Adam 2e-4, β 0.5, 0.999) or wgan-gp (5 critic updates a step, λ 10; Adam 1e-4, β 0, 0.9).")
    var loss: GANObjective = .bce
    @Option(help: "Training iterations (one G update each).") var steps = 10_000
    @Option(help: "Images per batch.") var batchSize = 64
    @Option(help: "Adam learning rate of both networks (default: the loss's).") var lr: Float?
    @Option(help: "Random seed: weights, batches and z.") var seed: UInt64 = 0
    @Option(help: "Where to write 64 samples as an 8 × 8 grid (PNG).") var out = "minimal-gan.png"

    func validate() throws {
        guard steps >= 0 else { throw ValidationError("--steps must be 0 or more, got \(steps)") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
        if let lr { guard lr > 0, lr.isFinite else { throw ValidationError("--lr must be a positive number, got \(lr)") } }
        // Checked before training, not after it.
        var isDirectory: ObjCBool = false
        let folder = URL(fileURLWithPath: out).deletingLastPathComponent().path
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ValidationError("--out \(out): the directory \(folder) does not exist")
        }
    }

    func run() throws {
        let data = try DatasetStore.load(dataset, split: .train) { print($0) }
        guard data.count > 0 else { throw ValidationError("\(dataset) holds no images") }
        let latent = 64, pixels = data.height * data.width
        var rng = RandomGenerator(seed: seed)

        // G maps z to an image in [-1, 1]; D maps an image to one unbounded score (a logit for
        // BCE, whose sigmoid is in the loss; the critic's value for WGAN-GP).
        let generator = Sequential(
            Linear(latent, 256, generator: &rng), LeakyReLU(0.2),
            Linear(256, 512, generator: &rng), LeakyReLU(0.2),
            Linear(512, pixels, generator: &rng), Tanh(),
            Reshape([1, data.height, data.width]))
        let discriminator = Sequential(
            Flatten(),
            Linear(pixels, 512, generator: &rng), LeakyReLU(0.2),
            Linear(512, 256, generator: &rng), LeakyReLU(0.2),
            Linear(256, 1, generator: &rng))
        let (rate, beta1, beta2) = (lr ?? loss.adam.learningRate, loss.adam.beta1, loss.adam.beta2)
        let optimizerG = Adam(generator.parameters, learningRate: rate, beta1: beta1, beta2: beta2)
        let optimizerD = Adam(discriminator.parameters, learningRate: rate, beta1: beta1, beta2: beta2)

        let loader = BatchLoader(data, batchSize: min(batchSize, data.count), scaling: .symmetric)
        let n = loader.batchSize
        let ones = Tensor.ones([n, 1]), zeros = Tensor.zeros([n, 1])
        var order: [Int] = [], batchesTaken = 0
        func nextRealBatch() -> Tensor {
            let index = batchesTaken % loader.batchesPerEpoch
            if index == 0 { order = loader.order(generator: &rng) }
            batchesTaken += 1
            return loader.batch(index, order: order).images
        }
        let fixedZ = Tensor.randn([64, latent], generator: &rng)
        let start = Date()
        for step in 0..<steps {
            var fake = Tensor.zeros([0]), lossD = Tensor.zeros([]), realScores = lossD, fakeScores = lossD
            for _ in 0..<loss.criticUpdates {
                let real = nextRealBatch()
                fake = generator(Tensor.randn([n, latent], generator: &rng))
                // `detached()` keeps D's loss from reaching G.
                optimizerD.zeroGrad()
                realScores = discriminator(real)
                fakeScores = discriminator(fake.detached())
                switch loss {
                case .bce:  // real → 1, fake → 0
                    lossD = Loss.bceWithLogits(realScores, ones) + Loss.bceWithLogits(fakeScores, zeros)
                case .wganGP:  // the earth mover's estimate, kept 1-Lipschitz by penalizing ‖∇D‖ ≠ 1
                    // between real and fake images: a gradient of a gradient, through every layer.
                    let alpha = Tensor.rand([n, 1, 1, 1], generator: &rng)
                    let penalty = gradientPenalty(real: real, fake: fake, alpha: alpha) { discriminator($0) }
                    lossD = fakeScores.mean() - realScores.mean() + 10 * penalty
                }
                lossD.backward()
                optimizerD.step()
            }

            // G learns to make the updated D score its last batch as real. The gradients this
            // leaves on D's weights are cleared by D's next zeroGrad; only G's optimizer steps.
            optimizerG.zeroGrad()
            let scores = discriminator(fake)
            let lossG = loss == .bce ? Loss.bceWithLogits(scores, ones) : -scores.mean()
            lossG.backward()
            optimizerG.step()

            if (step + 1) % 100 == 0 || step + 1 == steps {
                // D's mean output on the last real and fake batches: probabilities for BCE.
                let (dReal, dFake) = withoutGrad {
                    loss == .bce ? (realScores.sigmoid().mean().item, fakeScores.sigmoid().mean().item)
                                 : (realScores.mean().item, fakeScores.mean().item)
                }
                print(String(format: "step %5d  D %.3f  G %.3f  D(x) %.2f  D(G(z)) %.2f",
                             step + 1, lossD.item, lossG.item, dReal, dFake))
            }
        }
        let seconds = Date().timeIntervalSince(start)
        if steps > 0 {
            print(String(format: "%d steps in %.1f s (%.0f img/s through G)", steps, seconds, Double(steps * loss.criticUpdates * n) / seconds))
        }

        generator.eval()
        let samples = withoutGrad { generator(fixedZ) }
        try PNGImage.grid(samples, range: (-1, 1), columns: 8).write(to: out)
        print("Wrote \(out)")
    }
}

MinimalGAN.main()
