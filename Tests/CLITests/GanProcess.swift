import Foundation
import XCTest

/// Runs the built `gan` executable (beside the test bundle, or `$GAN_BINARY`) as a child
/// process, as a user would; `executable:` runs another product built beside it.
enum Gan {
    static let binary: String = {
        if let b = ProcessInfo.processInfo.environment["GAN_BINARY"], !b.isEmpty { return b }
        return Bundle.main.bundleURL.appendingPathComponent("gan").path
    }()

    /// The path of the product `name` built beside the test bundle.
    static func product(_ name: String) -> String { Bundle.main.bundleURL.appendingPathComponent(name).path }

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
        var output: String { stdout + stderr }
    }

    /// Starts `gan args…`, optionally under `sh -c 'ulimit -f KiB; exec …'`. Output goes to
    /// files (pipes could fill up and stall a long run).
    static func start(_ args: [String], executable: String = binary, fileSizeLimitKiB: Int? = nil, log: String) throws -> Process {
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw XCTSkip("no executable at \(executable); build it first (swift build -c release) or set GAN_BINARY")
        }
        let p = Process()
        if let limit = fileSizeLimitKiB {
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = ["-c", "ulimit -f \(limit); exec \"$0\" \"$@\"", executable] + args
        } else {
            p.executableURL = URL(fileURLWithPath: executable)
            p.arguments = args
        }
        for stream in [".out", ".err"] where !FileManager.default.createFile(atPath: log + stream, contents: nil) {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: log + stream])
        }
        p.standardOutput = FileHandle(forWritingAtPath: log + ".out")
        p.standardError = FileHandle(forWritingAtPath: log + ".err")
        try p.run()
        return p
    }

    /// Runs to the end (at most `timeout` seconds, then kills and fails).
    static func run(_ args: [String], executable: String = binary, fileSizeLimitKiB: Int? = nil, timeout: Double = 300,
                    file: StaticString = #filePath, line: UInt = #line) throws -> Result {
        let log = NSTemporaryDirectory() + "gan-cli-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: log + ".out"); try? FileManager.default.removeItem(atPath: log + ".err") }
        let p = try start(args, executable: executable, fileSizeLimitKiB: fileSizeLimitKiB, log: log)
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(10_000) }
        if p.isRunning {
            kill(p.processIdentifier, SIGKILL)
            p.waitUntilExit()
            XCTFail("\(executable) \(args.joined(separator: " ")) did not finish in \(timeout) s", file: file, line: line)
        }
        p.waitUntilExit()
        return Result(status: p.terminationStatus,
                      stdout: (try? String(contentsOfFile: log + ".out", encoding: .utf8)) ?? "",
                      stderr: (try? String(contentsOfFile: log + ".err", encoding: .utf8)) ?? "")
    }
}

/// A CLI test case with a fresh scratch directory (`dir`) for each test, removed afterwards.
class ScratchDirectoryTestCase: XCTestCase {
    var dir: String!

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "gan-cli-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: dir) }
}
