import Foundation
import TLPipeline

/// `tlhub train --resume DIR` (or `finetune`): the command line recorded in DIR's backup,
/// followed by whatever was given with `--resume` (a later option overrides an earlier one), so
/// the interrupted run's options need not be typed again.
enum ResumedRun {
    /// The subcommands that back up and resume.
    static let commands: Set<String> = ["train", "finetune"]

    /// The command line this process runs, without `--resume`: what a backup records.
    nonisolated(unsafe) private(set) static var recordedArguments: [String] = []

    /// `arguments` (without the program name) with a resumed run's recorded command line put in
    /// front of the options given.
    /// - Throws: ``PipelineError`` when DIR has no backup, or it was made by the other subcommand.
    static func expand(_ arguments: [String]) throws -> [String] {
        guard let command = arguments.first, commands.contains(command), let folder = resumeFolder(arguments) else {
            recordedArguments = arguments
            return arguments
        }
        let recorded = try TrainingBackup.arguments(in: URL(fileURLWithPath: folder))
        guard recorded.first == command else {
            throw PipelineError(folder, "was a `\(recorded[0])` run: resume it with tlhub \(recorded[0]) --resume \(folder)")
        }
        let expanded = recorded + arguments.dropFirst()
        recordedArguments = withoutResume(expanded)
        return expanded
    }

    /// The value of `--resume DIR` or `--resume=DIR`.
    private static func resumeFolder(_ arguments: [String]) -> String? {
        for (index, argument) in arguments.enumerated() {
            if argument == "--resume", index + 1 < arguments.count { return arguments[index + 1] }
            if argument.hasPrefix("--resume=") { return String(argument.dropFirst("--resume=".count)) }
        }
        return nil
    }

    private static func withoutResume(_ arguments: [String]) -> [String] {
        var result: [String] = [], skip = false
        for argument in arguments {
            if skip { skip = false; continue }
            if argument == "--resume" { skip = true; continue }
            if argument.hasPrefix("--resume=") { continue }
            result.append(argument)
        }
        return result
    }
}
