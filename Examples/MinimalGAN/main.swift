// A GAN written directly with the library's parts, to read and change: the loop `gan train`
// runs for you, in the shape of PyTorch-GAN's gan.py (fully connected G and D, BCE on logits,
// Adam with β1 0.5). Build and run:
//
//   swift run -c release minimal-gan --out minimal-gan.png     # 10,000 steps, about 90 s on 2 cores
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

struct MinimalGAN: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "minimal-gan",
        abstract: "Train a small fully connected GAN written with the swift-gan library, then draw a grid of samples.")

    @Option(help: "mnist, fashion-mnist, or a directory of IDX files.") var dataset = "mnist"
    @Option(help: "Training iterations (one D and one G update each).") var steps = 10_000
    @Option(help: "Images per iteration.") var batchSize = 64
    @Option(help: "Adam learning rate of both networks.") var lr: Float = 2e-4
    @Option(help: "Random seed: weights, batches and z.") var seed: UInt64 = 0
    @Option(help: "Where to write 64 samples as an 8 × 8 grid (PNG).") var out = "minimal-gan.png"

    func validate() throws {
        guard steps >= 0 else { throw ValidationError("--steps must be 0 or more, got \(steps)") }
        guard batchSize >= 1 else { throw ValidationError("--batch-size must be at least 1, got \(batchSize)") }
        guard lr > 0, lr.isFinite else { throw ValidationError("--lr must be a positive number, got \(lr)") }
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

        // G maps z to an image in [-1, 1]; D maps an image to one logit (the sigmoid is in the loss).
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
        let optimizerG = Adam(generator.parameters, learningRate: lr, beta1: 0.5)
        let optimizerD = Adam(discriminator.parameters, learningRate: lr, beta1: 0.5)

        let loader = BatchLoader(data, batchSize: min(batchSize, data.count), scaling: .symmetric)
        let ones = Tensor.ones([loader.batchSize, 1]), zeros = Tensor.zeros([loader.batchSize, 1])
        let fixedZ = Tensor.randn([64, latent], generator: &rng)
        var order: [Int] = []
        let start = Date()
        for step in 0..<steps {
            let index = step % loader.batchesPerEpoch
            if index == 0 { order = loader.order(generator: &rng) }
            let real = loader.batch(index, order: order).images
            let fake = generator(Tensor.randn([loader.batchSize, latent], generator: &rng))

            // D learns real → 1 and fake → 0. `detached()` keeps this loss from reaching G.
            optimizerD.zeroGrad()
            let realLogits = discriminator(real), fakeLogits = discriminator(fake.detached())
            let lossD = Loss.bceWithLogits(realLogits, ones) + Loss.bceWithLogits(fakeLogits, zeros)
            lossD.backward()
            optimizerD.step()

            // G learns to make the updated D say 1 (the non-saturating loss). The gradients this
            // leaves on D's weights are cleared by D's next zeroGrad; only G's optimizer steps.
            optimizerG.zeroGrad()
            let lossG = Loss.bceWithLogits(discriminator(fake), ones)
            lossG.backward()
            optimizerG.step()

            if (step + 1) % 100 == 0 || step + 1 == steps {
                let (dReal, dFake) = withoutGrad { (realLogits.sigmoid().mean().item, fakeLogits.sigmoid().mean().item) }
                print(String(format: "step %5d  D %.3f  G %.3f  D(x) %.2f  D(G(z)) %.2f",
                             step + 1, lossD.item, lossG.item, dReal, dFake))
            }
        }

        let seconds = Date().timeIntervalSince(start)
        if steps > 0 {
            print(String(format: "%d steps in %.1f s (%.0f img/s)", steps, seconds, Double(steps * loader.batchSize) / seconds))
        }

        generator.eval()
        let samples = withoutGrad { generator(fixedZ) }
        try PNGImage.grid(samples, range: (-1, 1), columns: 8).write(to: out)
        print("Wrote \(out)")
    }
}

MinimalGAN.main()
