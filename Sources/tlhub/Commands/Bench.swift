import ArgumentParser
import Foundation
import TLEngine
import TLPipeline
import TLTensor
import TLTraining

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure inference speed: images per second, milliseconds per batch, peak memory.",
        discussion: """
        Runs the model on random input; warm-up passes are not timed. Build with
        `swift build -c release --static-swift-stdlib` for meaningful numbers.

        Example:
          tlhub bench --model mobilenet_v2.safetensors --batch 32 --json
          tlhub bench --model mobilenet_v2_100_224 --batch 1
        """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(help: "Images per forward pass.")
    var batch = 1

    @Option(help: "Image size HxW or S (default: the model's published size, as for features).")
    var size: String?

    @Option(help: "Timed passes (default: as many as fit in about 5 seconds, at least 3).")
    var iterations: Int?

    @Option(help: "Untimed warm-up passes.")
    var warmup = 2

    @Flag(help: "Time features (base + pooling) instead of the full model.")
    var features = false

    @Flag(help: "Print JSON (images_per_second, ms_per_batch, peak_rss_mb, page_faults, and amx, amx_difference where the AMX check ran) on stdout.")
    var json = false

    @Flag(help: "Also print the slowest layers (of the features graph with --features): each layer's time over the whole batch, on stderr.")
    var profile = false

    @Option(help: "Layers --profile prints, slowest first.")
    var profileLayers = 20

    @Flag(help: .hidden)
    var alternate = false

    func validate() throws {
        guard batch > 0, warmup >= 0 else { throw ValidationError("--batch must be positive and --warmup not negative") }
        if let size { _ = try LoadedModel.parseSize(size) }
        if let iterations, iterations <= 0 { throw ValidationError("--iterations must be positive") }
        if alternate && (json || profile) { throw ValidationError("--alternate prints its own line; leave out --json and --profile") }
    }

    func run() async throws {
        let loaded = try await modelOptions.load()
        let model = loaded.model
        var shape = model.inputShape
        if shape.count == 3 {
            let (image, _) = try loaded.imageSize(requested: size)
            shape[0] = image.height
            shape[1] = image.width
        }
        // Seeded: the same input every run, and no getrandom call per value (a batch of 32 at
        // 224 px took 4.8 million system calls before the first pass).
        var generator = SeededRandom(seed: 0)
        let count = batch * shape.reduce(1, *)
        let input = Tensor(shape: [batch] + shape, scalars: (0..<count).map { _ in Float.random(in: -1...1, using: &generator) })
        let pass = self.pass(model, input)
        if alternate { return try await runAlternating(first: pass, input: input) }
        for _ in 0..<warmup { try pass() }
        var timings: [Double] = []
        let clock = ContinuousClock()
        let budget = Duration.seconds(5)
        let started = clock.now
        while iterations.map({ timings.count < $0 }) ?? (timings.count < 3 || clock.now - started < budget) {
            timings.append(try Self.seconds(pass))
        }
        let mean = timings.reduce(0, +) / Double(timings.count)
        let imagesPerSecond = Double(batch) / mean
        let peak = peakResidentMegabytes(), faults = minorPageFaults()
        if json {
            let fields = [
                "\"model\": \"\(model.name)\"", "\"batch\": \(batch)", "\"input_shape\": \([batch] + shape)",
                "\"iterations\": \(timings.count)",
                "\"images_per_second\": \(String(format: "%.3f", imagesPerSecond))",
                "\"ms_per_batch\": \(String(format: "%.3f", mean * 1000))",
                "\"peak_rss_mb\": \(String(format: "%.1f", peak))", "\"page_faults\": \(faults)",
            ] + (model.lastAMXCheck.map { ["\"amx\": \($0.chosen)", "\"amx_difference\": \(String(format: "%.2g", $0.difference))"] } ?? [])
            print("{" + fields.joined(separator: ", ") + "}")
        } else {
            print("model        \(model.name) input \([batch] + shape)")
            print("passes       \(timings.count) timed, \(warmup) warm-up")
            print("throughput   \(String(format: "%.2f", imagesPerSecond)) img/s")
            print("latency      \(String(format: "%.2f", mean * 1000)) ms/batch")
            print("peak RSS     \(String(format: "%.1f", peak)) MB")
            print("page faults  \(faults) (the process's, loading included)")
            if let check = model.lastAMXCheck {
                let found = String(format: "%.2g", check.difference)
                print("GEMMs        " + (check.chosen ? "AMX in \(check.convolutions) convolutions, \(found) of the largest output from fp32"
                                                      : "fp32: AMX was \(found) of the largest output from fp32 (over \(AMXCheck.tolerance))"))
            }
        }
        if profile {
            let timings = try model.profile(input: input, features: features)
            let total = timings.reduce(0) { $0 + $1.seconds }
            for timing in timings.prefix(max(profileLayers, 0)) {
                let line = String(format: "%8.2f ms %5.1f%%  ", timing.seconds * 1000, 100 * timing.seconds / max(total, 1e-12))
                FileHandle.standardError.write(Data((line + timing.layer + "\n").utf8))
            }
        }
    }

    /// `--alternate` (a development tool): a second copy of the model planned and run with
    /// `EngineVariant.isOn`, its passes alternating with the first copy's (off) for the time
    /// budget; prints each side's median and the median of the per-pair time ratios off/on
    /// (above 1: the variant is faster) with its quartiles.
    private func runAlternating(first: () throws -> Void, input: Tensor) async throws {
        EngineVariant.isOn = true  // the second copy is loaded, fused and planned as the variant
        let second = try await modelOptions.load().model
        EngineVariant.isOn = false
        let secondPass = pass(second, input)
        for _ in 0..<max(warmup, 1) {
            EngineVariant.isOn = false
            try first()
            EngineVariant.isOn = true
            try secondPass()
        }
        func timed(_ variant: Bool, _ pass: () throws -> Void) throws -> Double {
            EngineVariant.isOn = variant
            return try Self.seconds(pass)
        }
        let clock = ContinuousClock()
        var off: [Double] = [], on: [Double] = []
        let started = clock.now
        while iterations.map({ off.count < $0 }) ?? (off.count < 5 || clock.now - started < .seconds(10)) {
            // Alternate which side goes first, so neither always runs after the other's pass.
            if off.count % 2 == 0 {
                off.append(try timed(false, first)); on.append(try timed(true, secondPass))
            } else {
                on.append(try timed(true, secondPass)); off.append(try timed(false, first))
            }
        }
        EngineVariant.isOn = false
        func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }
        let ratios = zip(off, on).map { $0 / $1 }.sorted()
        print(String(format: "off %.3f ms, on %.3f ms (medians of %d passes each); off/on %.3f (quartiles %.3f–%.3f)",
                     median(off) * 1000, median(on) * 1000, off.count, median(ratios),
                     ratios[ratios.count / 4], ratios[3 * ratios.count / 4]))
    }

    /// One timed pass of `model` over `input`: features (average-pooled) or predictions.
    private func pass(_ model: Model, _ input: Tensor) -> () throws -> Void {
        { _ = try features ? model.features(input: input, pooling: .avg) : model.predict(input: input) }
    }

    /// Wall seconds `body` takes.
    private static func seconds(_ body: () throws -> Void) throws -> Double {
        let elapsed = try ContinuousClock().measure(body)
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }

    /// Minor page faults of the process so far (first touches of fresh memory).
    private func minorPageFaults() -> Int { resourceUsage().ru_minflt }

    /// `getrusage` of this process.
    private func resourceUsage() -> rusage {
        var usage = rusage()
        #if os(macOS)
        getrusage(RUSAGE_SELF, &usage)
        #else
        getrusage(RUSAGE_SELF.rawValue, &usage)
        #endif
        return usage
    }

    /// Peak resident set size of this process (Linux `VmHWM`, else `getrusage`).
    private func peakResidentMegabytes() -> Double {
        if let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
           let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
           let kilobytes = Double(line.split(separator: " ").dropFirst().first ?? "") {
            return kilobytes / 1024
        }
        #if os(macOS)
        return Double(resourceUsage().ru_maxrss) / 1_048_576  // bytes
        #else
        return Double(resourceUsage().ru_maxrss) / 1024  // kilobytes
        #endif
    }
}
