import Datasets
import Engine
import Foundation
import TestSupport
import XCTest

/// Bad files and bad flags, through the real executable: a clear message naming the file or
/// flag, a non-zero exit (1 for files, 64 for flags), and nothing written.
final class HostileInputTests: ScratchDirectoryTestCase {
    func idx(_ dims: [Int], _ body: [UInt8], magic: [UInt8]? = nil) -> Data {
        var out: [UInt8] = magic ?? [0, 0, 8, UInt8(dims.count)]
        for d in dims { out += [UInt8(d >> 24 & 0xFF), UInt8(d >> 16 & 0xFF), UInt8(d >> 8 & 0xFF), UInt8(d & 0xFF)] }
        return Data(out + body)
    }

    func gzip(_ data: Data) throws -> Data {
        let plain = dir + "/plain-\(UUID().uuidString)"
        try data.write(to: URL(fileURLWithPath: plain))
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/gzip")
        p.arguments = ["-f", plain]
        try p.run()
        p.waitUntilExit()
        return try Data(contentsOf: URL(fileURLWithPath: plain + ".gz"))
    }

    func testBadIDXDatasetsAreRefusedNamingTheFile() throws {
        let images = idx([4, 28, 28], [UInt8](repeating: 7, count: 4 * 784))
        let labels = idx([4], [0, 1, 2, 3])
        let cases: [(String, Data?, Data?, String)] = [
            ("truncated", images.prefix(images.count - 100), nil, "truncated: dimensions [4, 28, 28] need 3136 data bytes"),
            ("wrong-magic", idx([4, 28, 28], [UInt8](repeating: 0, count: 3136), magic: [0x50, 0x4B, 3, 4]), nil, "wrong magic"),
            ("oversized", idx([0xFFFF, 0xFFFF, 0xFFFF], []), nil, "too large"),
            ("count-mismatch", nil, idx([3], [0, 1, 2]), "holds 3 labels but"),
            ("corrupt-gzip", try gzip(images).prefix(60) + Data(repeating: 0xAB, count: 40), nil, "gzip"),
            ("labels-as-images", labels, nil, "expected an image file with 3 dimensions"),
        ]
        for (name, badImages, badLabels, expected) in cases {
            let data = dir + "/" + name
            try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
            let imagePath = data + "/train-images-idx3-ubyte" + (name == "corrupt-gzip" ? ".gz" : "")
            try (badImages ?? images).write(to: URL(fileURLWithPath: imagePath))
            try (badLabels ?? labels).write(to: URL(fileURLWithPath: data + "/train-labels-idx1-ubyte"))
            let r = try Gan.run(["train", "--model", "mlp", "--dataset", data, "--steps", "1", "--batch-size", "2", "--run-dir", dir + "/run-" + name])
            XCTAssertEqual(r.status, 1, "\(name): \(r.output)")
            XCTAssertTrue(r.stderr.contains(data + "/train-"), "\(name) should name the file: \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(expected), "\(name): \(r.stderr)")
            XCTAssertFalse(r.stderr.contains("Fatal error"), name)
            XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/run-" + name + "/checkpoints"), name)
        }
    }

    /// A generator whose images differ in size from the dataset's (the discriminator would see
    /// both) is refused before anything is written, with the size each has and, for dcgan-bn,
    /// the --blocks that fits; it was a crash in the first step.
    func testGeneratorAndDatasetSizesMustMatch() throws {
        let wide = dir + "/wide"
        try FileManager.default.createDirectory(atPath: wide, withIntermediateDirectories: true)
        try idx([4, 32, 32], [UInt8](repeating: 9, count: 4 * 1024)).write(to: URL(fileURLWithPath: wide + "/train-images-idx3-ubyte"))
        try idx([4], [0, 1, 2, 3]).write(to: URL(fileURLWithPath: wide + "/train-labels-idx1-ubyte"))
        let mnistLike = syntheticIDXDirectory(count: 8, seed: 5)
        let cases: [([String], String)] = [
            (["--model", "dcgan-bn", "--loss", "wgan-gp", "--blocks", "1", "--dataset", mnistLike],
             "--model dcgan-bn generates 14×14 images but \(mnistLike) holds 28×28 images (dcgan-bn starts at 7×7 and doubles per block: --blocks 1 gives 14×14; use --blocks 2)"),
            (["--model", "dcgan-bn", "--blocks", "3", "--filters", "16", "--dataset", mnistLike], "generates 56×56 images but"),
            (["--model", "mlp", "--dataset", wide], "--model mlp generates 28×28 images but \(wide) holds 32×32 images"),
        ]
        for (k, (args, expected)) in cases.enumerated() {
            let run = dir + "/run-\(k)"
            let r = try Gan.run(["train", "--steps", "1", "--batch-size", "2", "--run-dir", run] + args)
            XCTAssertEqual(r.status, 64, "\(args): \(r.output)")
            XCTAssertTrue(r.stderr.contains(expected), "\(args): \(r.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: run), "\(args): nothing written")
        }
    }

    /// Resuming a run with fewer steps than it has says so, trains nothing and keeps its checkpoint.
    func testResumingPastTheRequestedStepsSaysSo() throws {
        let data = syntheticIDXDirectory(count: 16, seed: 4), run = dir + "/past"
        let args = ["train", "--model", "mlp", "--dataset", data, "--batch-size", "8", "--run-dir", run]
        XCTAssertEqual(try Gan.run(args + ["--steps", "3"]).status, 0)
        let checkpoint = run + "/checkpoints/step-00000003.safetensors"
        let before = try Data(contentsOf: URL(fileURLWithPath: checkpoint))
        let r = try Gan.run(args + ["--steps", "2", "--resume"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.output.contains("Nothing left to train: \(run) is at step 3 and 2 iterations were asked for"), r.output)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: checkpoint)), before)
        let kept = try FileManager.default.contentsOfDirectory(atPath: run + "/checkpoints").filter { $0.hasSuffix(".safetensors") }.sorted()
        XCTAssertEqual(kept.last, "step-00000003.safetensors")
    }

    /// A checkpoint to point `gan sample` at, trained for a few steps on synthetic data.
    func goodCheckpoint() throws -> String {
        let r = try Gan.run(["train", "--model", "mlp", "--dataset", syntheticIDXDirectory(count: 16, seed: 4), "--steps", "2",
                             "--batch-size", "8", "--run-dir", dir + "/good"])
        XCTAssertEqual(r.status, 0, r.output)
        return dir + "/good/checkpoints/step-00000002.safetensors"
    }

    func safetensors(_ header: String, _ body: [UInt8] = [], declaredLength: UInt64? = nil) -> Data {
        var out = Data()
        withUnsafeBytes(of: (declaredLength ?? UInt64(header.utf8.count)).littleEndian) { out.append(contentsOf: $0) }
        return out + Data(header.utf8) + Data(body)
    }

    /// Options found wrong only once a file is read (a checkpoint's model, a run directory
    /// without checkpoints) exit 64 naming the option and the subcommand's help, not the root
    /// command's "Usage: gan <subcommand>".
    func testOptionsRefusedAfterReadingAFileNameTheSubcommand() throws {
        let checkpoint = try goodCheckpoint()
        let cases: [([String], String, String)] = [
            (["sample", "--checkpoint", checkpoint, "--class", "3", "--out", dir + "/grid.png"],
             "--class needs a conditional model (cgan, cdcgan); \(checkpoint) holds mlp", "gan sample --help"),
            (["train", "--resume", "--run-dir", dir + "/empty", "--steps", "1"],
             "--resume: \(dir!)/empty holds no checkpoint to resume from", "gan train --help"),
        ]
        for (args, message, help) in cases {
            let r = try Gan.run(args)
            XCTAssertEqual(r.status, 64, "\(args): \(r.output)")
            XCTAssertTrue(r.stderr.contains("Error: " + message), "\(args): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(help), "\(args): \(r.stderr)")
            XCTAssertFalse(r.stderr.contains("<subcommand>"), "\(args): \(r.stderr)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir + "/grid.png"))
    }

    func testBadCheckpointsAreRefusedNamingTheFile() throws {
        let four = [UInt8](repeating: 0, count: 4), eight = [UInt8](repeating: 0, count: 8)
        let good = try goodCheckpoint()
        let goodBytes = try Data(contentsOf: URL(fileURLWithPath: good))
        let cases: [(String, Data, String)] = [
            ("header-past-end", safetensors("{}", declaredLength: 1 << 40), "past the end"),
            ("malformed-json", safetensors(#"{"a": [1, 2"#), "not a JSON object"),
            ("overlap", safetensors(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}"#, eight), "overlap"),
            ("out-of-range", safetensors(#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, four), "past the data size"),
            ("unknown-dtype", safetensors(#"{"a":{"dtype":"C64","shape":[1],"data_offsets":[0,4]}}"#, four), "unsupported dtype C64"),
            ("shape-size", safetensors(#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,4]}}"#, four), "needs 12"),
            ("duplicate", safetensors(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, eight), "appears twice"),
            ("not-a-gan", safetensors(#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, four), "training configuration"),
            ("truncated", goodBytes.prefix(goodBytes.count / 2), "past the data size"),
        ]
        for (name, bytes, expected) in cases {
            let path = dir + "/\(name).safetensors"
            try bytes.write(to: URL(fileURLWithPath: path))
            let out = dir + "/\(name).png"
            let r = try Gan.run(["sample", "--checkpoint", path, "--out", out])
            XCTAssertEqual(r.status, 1, "\(name): \(r.output)")
            XCTAssertTrue(r.stderr.contains(path), "\(name) should name the file: \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(expected), "\(name): \(r.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: out), name)
        }
    }

    func testBadNpyFilesAreRefusedNamingTheFile() throws {
        let good = try goodCheckpoint()
        let f32 = NumpyFile.encode(shape: [2, 100], dtype: .float32, values: [Float](repeating: 0.5, count: 200))
        let asText = String(data: f32, encoding: .isoLatin1)!
        let cases: [(String, [String], Data, String)] = [
            ("bad-header", ["sample", "--checkpoint", good], Data([0x93] + Array("NUMPY".utf8) + [1, 0, 0xFF, 0xFF] + Array("{'descr".utf8)), "header length"),
            ("wrong-dtype", ["sample", "--checkpoint", good], asText.replacingOccurrences(of: "<f4", with: "<i8").data(using: .isoLatin1)!, "dtype <i8 is not supported"),
            ("wrong-latent-shape", ["sample", "--checkpoint", good], NumpyFile.encode(shape: [2, 99], dtype: .float32, values: [Float](repeating: 0, count: 198)), "shape [N, 100]"),
            ("uint8-latents", ["sample", "--checkpoint", good], NumpyFile.encode(shape: [2, 100], dtype: .uint8, values: [Float](repeating: 1, count: 200)), "float32 latent vectors"),
            ("shape-tuple", ["sample", "--checkpoint", good], asText.replacingOccurrences(of: "(2, 100)", with: ")2, 100(").data(using: .isoLatin1)!, "shape tuple"),
        ]
        for (name, args, bytes, expected) in cases {
            let path = dir + "/\(name).npy"
            try bytes.write(to: URL(fileURLWithPath: path))
            let out = dir + "/\(name).png"
            let r = try Gan.run(args + ["--z", path, "--out", out])
            XCTAssertEqual(r.status, 1, "\(name): \(r.output)")
            XCTAssertTrue(r.stderr.contains(path), "\(name) should name the file: \(r.stderr)")
            XCTAssertTrue(r.stderr.contains(expected), "\(name): \(r.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: out), name)
        }
        // Samples to score: wrong image shape and out-of-range floats are refused before any data set is read.
        for (name, bytes, expected) in [
            ("small-images", NumpyFile.encode(shape: [2, 27, 27], dtype: .uint8, values: [Float](repeating: 3, count: 2 * 729)), "expected N×28×28"),
            ("float-range", NumpyFile.encode(shape: [1, 28, 28], dtype: .float32, values: [Float](repeating: 3, count: 784)), "expected [0, 1]"),
        ] {
            let path = dir + "/\(name).npy"
            try bytes.write(to: URL(fileURLWithPath: path))
            let r = try Gan.run(["eval", "--samples", path])
            XCTAssertEqual(r.status, 1, "\(name): \(r.output)")
            XCTAssertTrue(r.stderr.contains(path) && r.stderr.contains(expected), "\(name): \(r.stderr)")
        }
    }

    /// Inputs the fuzzers once crashed on (Fuzz/crashes/, named by parser) are refused with a
    /// FileFormatError, or (where the finding was a valid file wrongly refused) parsed and
    /// written back unchanged.
    func testFuzzerFindingsAreHandled() throws {
        let crashes = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Fuzz/crashes").standardized.path
        let names = try FileManager.default.contentsOfDirectory(atPath: crashes).sorted()
        XCTAssertFalse(names.isEmpty)
        for name in names {
            let bytes = try Data(contentsOf: URL(fileURLWithPath: crashes + "/" + name))
            if name.hasPrefix("npy-") {
                XCTAssertThrowsError(try NumpyFile.parse(bytes, path: name), name)
            } else if name.hasPrefix("safetensors-") {
                do {
                    let file = try SafeTensors.parse(bytes, path: name)
                    let again = try SafeTensors.parse(try file.serialized(), path: name + " (rewritten)")
                    XCTAssertEqual(Set(again.tensors.keys), Set(file.tensors.keys), name)
                    for (k, t) in file.tensors { XCTAssertEqual(again.tensors[k]?.shape, t.shape, "\(name): \(k)") }
                } catch {
                    XCTAssertTrue(error is FileFormatError, "\(name): \(error)")
                }
            } else if name.hasPrefix("idx-") {
                XCTAssertThrowsError(try IDXFile.decode([UInt8](bytes), path: name), name)
            } else {
                XCTFail("\(name): name a crash input after its parser (npy-, safetensors-, idx-)")
            }
        }
    }

    func testEveryBadFlagIsNamed() throws {
        let cases: [([String], String)] = [
            (["train", "--batch-size", "0"], "--batch-size must be positive"),
            (["train", "--epochs=-1"], "--epochs must be positive"),
            (["train", "--steps", "0"], "--steps must be positive"),
            (["train", "--lr-g", "0"], "--lr-g must be a positive number"),
            (["train", "--lr-d", "nan"], "--lr-d must be a positive number"),
            (["train", "--beta1-g", "1.5"], "--beta1-g must be in [0, 1)"),
            (["train", "--n-critic", "0"], "--n-critic must be positive"),
            (["train", "--gp-lambda=-1"], "--gp-lambda must not be negative"),
            (["train", "--clip", "0"], "--clip must be a positive number"),
            (["train", "--label-smoothing", "1"], "--label-smoothing must be in [0, 1)"),
            (["train", "--ema", "1"], "--ema must be in (0, 1)"),
            (["train", "--latent-dim", "0"], "--latent-dim must be positive"),
            (["train", "--model", "vae"], "--model vae is not one of mlp, mlp-deep, dcgan, dcgan-bn, cgan, cdcgan"),
            (["train", "--loss", "l1"], "--loss l1 is not one of minimax, nonsaturating, lsgan, wgan-clip, wgan-gp, hinge"),
            (["train", "--critic-norm", "group", "--model", "dcgan-bn"], "--critic-norm group is not one of batch, layer, none"),
            (["train", "--critic-norm", "layer"], "--critic-norm applies to dcgan-bn and cdcgan only"),
            (["train", "--epochs", "1", "--steps", "5"], "--epochs and --steps conflict"),
            (["train", "--resume", "--overwrite"], "--overwrite and --resume conflict"),
            (["train", "--on-divergence", "ignore"], "--on-divergence ignore is not one of rollback, stop"),
            (["train", "--max-rollbacks=-1"], "--max-rollbacks must not be negative"),
            (["train", "--latent", "cauchy"], "--latent cauchy is not one of normal, uniform"),
            (["train", "--loss", "wgan-gp", "--feature-matching"], "--feature-matching replaces the generator loss"),
            (["train", "--batch-size", "lots"], "--batch-size"),
            (["sample", "--checkpoint", "c", "--out", "x.png", "--count", "0"], "--count must be positive"),
            (["sample", "--checkpoint", "c", "--out", "x.jpg"], "--out must be a .png file, a .npy file or a directory"),
            (["sample", "--checkpoint", "c", "--out", "x.png", "--class", "10"], "--class must be 0 to 9"),
            (["interpolate", "--checkpoint", "c", "--from", "1", "--to", "2", "--steps", "1", "--out", "s.png"], "--steps must be at least 2"),
            (["eval", "--samples", "s.npy", "--count", "1"], "--count must be at least 2"),
            (["eval", "--samples", "s.npy", "--checkpoint", "c"], "give exactly one of --checkpoint and --samples"),
            (["eval", "--samples", "s.npy", "--dataset", "cifar"], "--dataset cifar is not one of mnist, fashion-mnist"),
            (["bench", "train", "--iters", "0"], "--iters must be positive"),
            (["bench", "generate", "--count=-5"], "--count must be positive"),
            (["bench", "engine", "--model", "vgg"], "--model vgg is not one of dcgan, mlp, wgan-gp-critic"),
            (["bench", "train", "--alternate", "turbo"], "dnnl-matmul"),
            (["bench", "train", "--alternate", "wide-kernels", "--iters", "30", "--block", "10"], "--alternate needs --iters of at least 4 blocks (40 with --block 10), got 30"),
            (["bench", "train", "--alternate", "wide-kernels", "--iters", "80", "--profile"], "--profile and --alternate do not go together"),
            (["bench", "train", "--alternate", "wide-kernels", "--iters", "80", "--trace", "t.json"], "--trace and --alternate do not go together"),
            (["bench", "train", "--trace", "t.json", "--trace-steps", "0"], "--trace-steps must be positive, got 0"),
            (["bench", "train", "--trace", "runs/"], "--trace wants a file name, got 'runs/'"),
            (["bench", "train", "--trace", "/nonexistent-dir/t.json"], "--trace /nonexistent-dir/t.json: the directory /nonexistent-dir does not exist"),
            (["classifier", "train", "--lr=-1"], "--lr must be a positive number"),
        ]
        for (args, expected) in cases {
            let r = try Gan.run(args)
            XCTAssertEqual(r.status, 64, "\(args): \(r.output)")
            XCTAssertTrue(r.stderr.contains(expected), "\(args): \(r.stderr)")
        }
    }
}
