import Foundation
import GAN
import TestSupport
import XCTest

/// The example GAN written with the library's public API (`Examples/MinimalGAN`) trains: on a
/// data set of one image, its generator moves from noise to that image.
final class MinimalGANExampleTests: ScratchDirectoryTestCase {
    /// A bright 12 × 12 square on black, the only image of the data set.
    static let square: [UInt8] = (0..<784).map { i in (8..<20).contains(i / 28) && (8..<20).contains(i % 28) ? 255 : 0 }

    func run(_ args: [String]) throws -> Gan.Result { try Gan.run(args, executable: Gan.product("minimal-gan")) }

    /// Mean distance of the 64 cells of an 8 × 8 grid (28 × 28, 2 pixels apart) from the square, 0–1.
    func distanceFromSquare(_ path: String) throws -> Double {
        let grid = try PNGImage.readGray(path: path)
        XCTAssertEqual([grid.width, grid.height], [8 * 28 + 9 * 2, 8 * 28 + 9 * 2])
        var total = 0
        for k in 0..<64 {
            let ox = 2 + (k % 8) * 30, oy = 2 + (k / 8) * 30
            for i in 0..<784 { total += abs(Int(grid.pixels[(oy + i / 28) * grid.width + ox + i % 28]) - Int(Self.square[i])) }
        }
        return Double(total) / Double(64 * 784 * 255)
    }

    func testGeneratorLearnsTheOnlyImageOfItsDataSet() throws {
        let data = idxDirectory(images: Array([[UInt8]](repeating: Self.square, count: 64).joined()), count: 64, name: "square")
        // With either loss: BCE moved 0.50 → 0.011 of the range in 200 steps, WGAN-GP (5 critic
        // updates a step, the gradient penalty through every layer) to 0.000004.
        for loss in ["bce", "wgan-gp"] {
            let common = ["--dataset", data, "--loss", loss, "--batch-size", "32", "--lr", "0.001", "--seed", "3"]
            let untrained = try run(common + ["--steps", "0", "--out", dir + "/untrained-\(loss).png"])
            XCTAssertEqual(untrained.status, 0, untrained.output)
            let trained = try run(common + ["--steps", "200", "--out", dir + "/trained-\(loss).png"])
            XCTAssertEqual(trained.status, 0, trained.output)
            XCTAssertTrue(trained.output.contains("step   200  D "), trained.output)

            let before = try distanceFromSquare(dir + "/untrained-\(loss).png")
            let after = try distanceFromSquare(dir + "/trained-\(loss).png")
            // Untrained, tanh of small outputs is mid-gray everywhere: about half the range away.
            XCTAssertGreaterThan(before, 0.35, loss)
            XCTAssertLessThan(after, 0.1, "\(loss): after 200 steps the samples are \(after) from the square (untrained: \(before))")
        }
    }

    func testABadFlagIsRefusedWithItsName() throws {
        let r = try run(["--steps=-5", "--out", dir + "/x.png"])
        XCTAssertEqual(r.status, 64, r.output)
        XCTAssertTrue(r.output.contains("--steps must be 0 or more, got -5"), r.output)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/x.png"))
        // An output the run could not write is refused before it trains.
        let nowhere = try run(["--steps", "5", "--out", dir + "/missing/x.png"])
        XCTAssertEqual(nowhere.status, 64, nowhere.output)
        XCTAssertTrue(nowhere.output.contains("the directory \(dir!)/missing does not exist"), nowhere.output)
    }
}
