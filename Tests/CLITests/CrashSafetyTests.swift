import Engine
import Foundation
import GAN
import NN
import TestSupport
import XCTest

/// No run is lost: SIGKILL at random moments, full disks and unwritable directories leave
/// every checkpoint loadable, and resuming ends where an uninterrupted run ends, bit for bit.
final class CrashSafetyTests: XCTestCase {
    static let data = syntheticIDXDirectory(count: 48, seed: 21)

    func trainArgs(_ runDir: String, steps: Int) -> [String] {
        ["train", "--model", "mlp", "--dataset", CrashSafetyTests.data, "--batch-size", "8", "--steps", "\(steps)",
         "--seed", "5", "--log-every", "1", "--run-dir", runDir]
    }

    func tempDir(_ tag: String) -> String {
        let d = NSTemporaryDirectory() + "gan-\(tag)-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true)
        return d
    }

    /// Every tensor and random-stream state of two checkpoints, bit for bit.
    func assertSameState(_ a: String, _ b: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let x = try Checkpoint.read(path: a), y = try Checkpoint.read(path: b)
        XCTAssertEqual(Set(x.file.tensors.keys), Set(y.file.tensors.keys), file: file, line: line)
        let differing = x.file.tensors.keys.sorted().filter { x.file.tensors[$0]!.scalars.map(\.bitPattern) != y.file.tensors[$0]?.scalars.map(\.bitPattern) }
        XCTAssertEqual(differing, [], file: file, line: line)
        for k in x.metadata.keys where k.hasPrefix("rng.") || k == "global_step" {
            XCTAssertEqual(x.metadata[k], y.metadata[k], k, file: file, line: line)
        }
    }

    func testTwentySIGKILLsThenResumeEndsBitIdentical() throws {
        let root = tempDir("sigkill")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let steps = 480   // 80 epochs of 6 steps, a checkpoint after each; about 7 s
        let t0 = Date()
        let straight = try Gan.run(trainArgs(root + "/straight", steps: steps))
        XCTAssertEqual(straight.status, 0, straight.output)
        // Kill delays add up to at most 0.9 of an uninterrupted run (each restart also spends
        // time starting), so on any machine the run is still going at every kill.
        let longest = 0.9 * Date().timeIntervalSince(t0) / 20

        let dir = RunDirectory(root + "/killed")
        var g = RandomGenerator(seed: 2026)
        var killedDuringRun = 0
        for k in 0..<20 {
            var args = trainArgs(dir.path, steps: steps)
            if dir.latestCheckpoint != nil { args.append("--resume") }
            let p = try Gan.start(args, log: root + "/log-\(k)")
            let delay = 0.05 + (longest - 0.05) * Double(Tensor.rand([1], generator: &g).item)
            usleep(useconds_t(delay * 1e6))
            if p.isRunning { killedDuringRun += 1 }
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            // Whatever moment the kill hit, every checkpoint on disk loads and holds finite values.
            for path in dir.checkpointFiles() {
                let ck = try Checkpoint.read(path: path)
                XCTAssertTrue(ck.file.tensors.values.allSatisfy(\.isAllFinite), path)
            }
        }
        XCTAssertEqual(killedDuringRun, 20, "every kill should land while the run is going")
        let finish = try Gan.run(trainArgs(dir.path, steps: steps) + (dir.latestCheckpoint != nil ? ["--resume"] : []))
        XCTAssertEqual(finish.status, 0, finish.output)
        let name = String(format: "step-%08d.safetensors", steps)
        try assertSameState(dir.checkpoints + "/" + name, root + "/straight/checkpoints/" + name)
        // The metrics, truncated at each resume, read as those of the uninterrupted run.
        XCTAssertEqual(try String(contentsOfFile: dir.metricsCSV, encoding: .utf8),
                       try String(contentsOfFile: root + "/straight/metrics.csv", encoding: .utf8))
        // Temporary files of cut-short writes were cleaned up.
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.checkpoints).filter { $0.contains(".tmp-") }
        XCTAssertEqual(leftovers, [])
    }

    func testSIGINTAndSIGTERMSaveAndSayHowToContinue() throws {
        for sig in [SIGINT, SIGTERM] {
            let root = tempDir("signal")
            defer { try? FileManager.default.removeItem(atPath: root) }
            let p = try Gan.start(trainArgs(root + "/run", steps: 100_000), log: root + "/log")
            // Wait for training to start (the step-0 checkpoint), then signal.
            let deadline = Date().addingTimeInterval(60)
            while RunDirectory(root + "/run").latestCheckpoint == nil && Date() < deadline { usleep(20_000) }
            usleep(300_000)
            kill(p.processIdentifier, sig)
            p.waitUntilExit()
            let out = try String(contentsOfFile: root + "/log.out", encoding: .utf8)
            XCTAssertEqual(p.terminationStatus, 0, out)
            XCTAssertTrue(out.contains("Stopped by signal after step"), out)
            XCTAssertTrue(out.contains("--resume"), out)
            let latest = try XCTUnwrap(RunDirectory(root + "/run").latestCheckpoint)
            let ck = try Checkpoint.read(path: latest)
            XCTAssertGreaterThan(Int(ck.metadata["global_step"] ?? "0") ?? 0, 0)
        }
    }

    /// A file-size limit below a checkpoint's size (what a nearly full disk does to the next
    /// write): a clear error at save time, exit 1, the previous checkpoint byte-identical, no
    /// temporary file left; once there is room, --resume finishes the run as if nothing happened.
    func testFullDiskAtSaveTimeKeepsThePreviousCheckpoint() throws {
        let root = tempDir("full")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let dir = RunDirectory(root + "/run")
        let first = try Gan.run(trainArgs(dir.path, steps: 12))
        XCTAssertEqual(first.status, 0, first.output)
        let previous = try XCTUnwrap(dir.latestCheckpoint)
        let before = try Data(contentsOf: URL(fileURLWithPath: previous))

        let full = try Gan.run(trainArgs(dir.path, steps: 24) + ["--resume"], fileSizeLimitKiB: 1024)
        XCTAssertEqual(full.status, 1, full.output)
        XCTAssertTrue(full.stderr.contains("could not save the checkpoint at step 18"), full.stderr)
        XCTAssertTrue(full.stderr.contains("step-00000012.safetensors is intact"), full.stderr)
        XCTAssertEqual(dir.latestCheckpoint, previous)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: previous)), before)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir.checkpoints).filter { $0.contains(".tmp-") }, [])

        let resumed = try Gan.run(trainArgs(dir.path, steps: 24) + ["--resume"])
        XCTAssertEqual(resumed.status, 0, resumed.output)
        let straight = try Gan.run(trainArgs(root + "/straight", steps: 24))
        XCTAssertEqual(straight.status, 0, straight.output)
        try assertSameState(dir.checkpoints + "/step-00000024.safetensors", root + "/straight/checkpoints/step-00000024.safetensors")
    }

    /// A real small file system (tmpfs; needs root, skipped otherwise): too small for one
    /// checkpoint is refused before training; one that fills up mid-run fails at save time with
    /// the previous checkpoint intact.
    func testSmallTmpfs() throws {
        guard getuid() == 0 else { throw XCTSkip("mounting a tmpfs needs root") }
        let mnt = tempDir("tmpfs")
        defer { try? FileManager.default.removeItem(atPath: mnt) }
        for (sizeMiB, expectBefore) in [(4, true), (24, false)] {
            guard mount("tmpfs", mnt, "tmpfs", 0, "size=\(sizeMiB)m") == 0 else {
                throw XCTSkip("cannot mount a tmpfs here: \(String(cString: strerror(errno)))")
            }
            defer { umount(mnt) }
            let dir = RunDirectory(mnt + "/run")
            let r = try Gan.run(trainArgs(dir.path, steps: 600))
            XCTAssertEqual(r.status, 1, r.output)
            if expectBefore {
                XCTAssertTrue(r.stderr.contains("MiB free, but a checkpoint of this model needs about"), r.stderr)
                XCTAssertEqual(dir.checkpointFiles(), [])
                XCTAssertFalse(r.stdout.contains("epoch 1"), "no training before the error")
            } else {
                XCTAssertTrue(r.stderr.contains("could not save the checkpoint"), r.stderr)
                XCTAssertTrue(r.stderr.contains("is intact"), r.stderr)
                let files = dir.checkpointFiles()
                XCTAssertFalse(files.isEmpty)
                for f in files { XCTAssertNoThrow(try Checkpoint.read(path: f), f) }
            }
        }
    }

    /// A checkpoint damaged on disk after it was written: --resume says so and continues from
    /// the newest one that reads.
    func testDamagedLatestCheckpointFallsBackToThePreviousOne() throws {
        let root = tempDir("damaged")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let dir = RunDirectory(root + "/run")
        XCTAssertEqual(try Gan.run(trainArgs(dir.path, steps: 12)).status, 0)
        let latest = try XCTUnwrap(dir.latestCheckpoint)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: latest))
        try bytes.prefix(bytes.count / 3).write(to: URL(fileURLWithPath: latest))
        let r = try Gan.run(trainArgs(dir.path, steps: 18) + ["--resume"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stderr.contains("warning: skipping unreadable checkpoint: \(latest)"), r.stderr)
        XCTAssertTrue(r.stderr.contains("Resuming \(dir.path) from step-00000006.safetensors"), r.stderr)
        XCTAssertEqual(dir.latestCheckpoint.map { ($0 as NSString).lastPathComponent }, "step-00000018.safetensors")
    }

    func testRunDirectoryThatCannotBeWrittenIsRefusedBeforeTraining() throws {
        let root = tempDir("ro")
        defer { try? FileManager.default.removeItem(atPath: root) }
        // Under a regular file nothing can be created, even by root.
        XCTAssertTrue(FileManager.default.createFile(atPath: root + "/file", contents: Data("x".utf8)))
        let r = try Gan.run(trainArgs(root + "/file/run", steps: 6))
        XCTAssertEqual(r.status, 1, r.output)
        XCTAssertTrue(r.stderr.contains("\(root)/file/run") && r.stderr.contains("cannot create the run directory"), r.stderr)
        if getuid() != 0 {
            // Permissions bind only non-root users.
            try FileManager.default.createDirectory(atPath: root + "/locked/checkpoints", withIntermediateDirectories: true)
            chmod(root + "/locked", 0o555)
            defer { chmod(root + "/locked", 0o755) }
            let locked = try Gan.run(trainArgs(root + "/locked", steps: 6))
            XCTAssertEqual(locked.status, 1, locked.output)
            XCTAssertTrue(locked.stderr.contains("not writable"), locked.stderr)
        }
    }
}
