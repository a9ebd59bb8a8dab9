import Engine
import Foundation

/// The files of one run:
///
///     config.json              the run's TrainConfig
///     metrics.jsonl            one JSON object per logged step
///     metrics.csv              the same, as CSV
///     eval.jsonl               FD and coverage of 2,000 samples every --eval-every epochs
///     samples/epoch-0001.png   the fixed latent batch after each epoch
///     samples/step-00000500.png  the same every --sample-every steps
///     progress.png             rows of chosen epochs, as the textbook's figure
///     plots/losses.png         D and G loss against iterations and epochs
///     plots/d_outputs.png      mean D(x) and D(G(z))
///     plots/fd.png             the evaluations' FD, from the second on
///     checkpoints/step-00004690.safetensors   the last three checkpoints
///     summary.json             what happened, written at the end
public struct RunDirectory {
    public let path: String
    public init(_ path: String) { self.path = path }

    public var config: String { path + "/config.json" }
    public var metricsJSONL: String { path + "/metrics.jsonl" }
    public var metricsCSV: String { path + "/metrics.csv" }
    /// FD and coverage of 2,000 samples, a line per evaluation (`--eval-every`).
    public var evalJSONL: String { path + "/eval.jsonl" }
    public var fdPlot: String { plots + "/fd.png" }
    public var samples: String { path + "/samples" }
    public var plots: String { path + "/plots" }
    public var checkpoints: String { path + "/checkpoints" }
    public var summary: String { path + "/summary.json" }
    public var progressSheet: String { path + "/progress.png" }

    public func create() throws {
        for d in [path, samples, plots, checkpoints] {
            do { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) } catch {
                throw FileFormatError(d, "cannot create the run directory: \(error.localizedDescription)")
            }
        }
        guard access(path, W_OK) == 0 else { throw FileFormatError(path, "the run directory is not writable") }
    }

    public func checkpointPath(step: Int) -> String { checkpoints + String(format: "/step-%08d.safetensors", step) }
    /// The sample grid of a step (`--sample-every`, or the last step of a run that stops mid-epoch).
    public func stepGrid(step: Int) -> String { samples + String(format: "/step-%08d.png", step) }

    /// Checkpoints by step, newest last.
    public func checkpointFiles() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: checkpoints)) ?? []
        return names.filter { $0.hasPrefix("step-") && $0.hasSuffix(".safetensors") }.sorted().map { checkpoints + "/" + $0 }
    }

    public var latestCheckpoint: String? { checkpointFiles().last }

    /// Deletes the temporary files of writes that a crash cut short (`.NAME.tmp-PID`); the
    /// files they were to replace are intact.
    public func removeStaleTemporaryFiles() {
        for d in [path, checkpoints, samples, plots] {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: d)) ?? [] where name.hasPrefix(".") && name.contains(".tmp-") {
                try? FileManager.default.removeItem(atPath: d + "/" + name)
            }
        }
    }

    /// Keeps the newest `keep` checkpoints.
    public func pruneCheckpoints(keep: Int = 3) {
        let files = checkpointFiles()
        for f in files.dropLast(keep) { try? FileManager.default.removeItem(atPath: f) }
    }
}

/// Appends lines to a file, creating it when missing.
final class LineAppender {
    let handle: FileHandle
    let path: String
    init(path: String, header: String? = nil) throws {
        self.path = path
        let exists = FileManager.default.fileExists(atPath: path)
        if !exists, !FileManager.default.createFile(atPath: path, contents: header.map { Data(($0 + "\n").utf8) }) {
            throw FileFormatError(path, "cannot create")
        }
        guard let h = FileHandle(forWritingAtPath: path) else { throw FileFormatError(path, "cannot open for appending") }
        handle = h
        handle.seekToEndOfFile()
    }
    func append(_ line: String) throws {
        do { try handle.write(contentsOf: Data((line + "\n").utf8)) } catch {
            throw FileFormatError(path, "cannot append: \(error.localizedDescription)")
        }
    }
    deinit { try? handle.close() }
}

/// A checkpoint that could not be written; says which earlier one is still intact.
public struct SaveError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}
