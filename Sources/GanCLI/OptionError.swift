import ArgumentParser
import Foundation

/// A bad option that shows only once `run()` has read a file (a checkpoint's model, a run
/// directory's state): ArgumentParser's message and exit status 64, with the subcommand's help
/// hint. A ValidationError thrown from `run()` is reported by the root command, with its
/// "Usage: gan <subcommand>" line, which says nothing about the option at fault.
func optionError(_ message: String, command: String) -> ExitCode {
    FileHandle.standardError.write(Data("Error: \(message)\n  See 'gan \(command) --help' for more information.\n".utf8))
    return ExitCode.validationFailure
}
