import ArgumentParser
import Foundation
import TLHubClient
import TLPipeline

struct Cache: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Inspect and tidy the download cache.",
        discussion: """
        Examples:
          tlhub cache ls
          tlhub cache verify
          tlhub cache rm mobilenet_v2_100_224
          tlhub cache prune
          tlhub cache prune --features     # also finetune's cached base features
        """,
        subcommands: [ListEntries.self, Verify.self, Remove.self, Prune.self])

    struct ListEntries: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "ls", abstract: "List cached files with their sizes.")
        @OptionGroup var cacheOptions: CacheOptions

        func run() async throws {
            let hub = try cacheOptions.makeHub()
            let entries = hub.cachedEntries()
            let width = entries.map(\.name.count).max() ?? 0
            for entry in entries {
                let size = ByteCount.format(entry.size).padding(toLength: 9, withPad: " ", startingAt: 0)
                print("\(entry.name.padding(toLength: width, withPad: " ", startingAt: 0))  \(size)  \(entry.file.path)")
            }
            let total = entries.reduce(Int64(0)) { $0 + $1.size }
            print("\(entries.count) files, \(ByteCount.format(total)) in \(hub.cacheDirectory.path)")
            let features = FeatureCache.list(cacheDirectory: hub.cacheDirectory)
            for cache in features {
                print("features  \(ByteCount.format(cache.bytes).padding(toLength: 9, withPad: " ", startingAt: 0))  \(cache.entries) images  \(cache.folder.path)")
            }
            if !features.isEmpty {
                let bytes = features.reduce(Int64(0)) { $0 + $1.bytes }
                print("\(features.count) feature caches (finetune), \(ByteCount.format(bytes)); `tlhub cache prune --features` removes them")
            }
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Re-hash every cached file against its recorded and published hashes.")
        @OptionGroup var cacheOptions: CacheOptions

        func run() async throws {
            let hub = try cacheOptions.makeHub()
            var failures = 0
            for entry in hub.cachedEntries() {
                do {
                    try hub.verify(entry)
                    print("ok    \(entry.name)")
                } catch {
                    failures += 1
                    print("BAD   \(entry.name): \(error.localizedDescription)")
                }
            }
            if failures > 0 {
                FileHandle.standardError.write(Data("\(failures) cached file(s) failed verification; `tlhub cache rm NAME` and pull again\n".utf8))
                throw ExitCode.failure
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "rm", abstract: "Remove an artifact from the cache.")
        @OptionGroup var cacheOptions: CacheOptions
        @Argument(help: "A name as `tlhub list` or `tlhub cache ls` prints it, or a cached file name.")
        var name: String

        func run() async throws {
            let removed = try cacheOptions.makeHub().remove(name)
            if removed.isEmpty {
                FileHandle.standardError.write(Data("'\(name)' is not in the cache\n".utf8))
                throw ExitCode.failure
            }
            for url in removed { print("removed \(url.path)") }
        }
    }

    struct Prune: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete partial downloads, orphaned metadata and unused lock files (skips downloads in progress).")
        @OptionGroup var cacheOptions: CacheOptions

        @Flag(help: "Also delete finetune's feature caches (they are recomputed when needed).")
        var features = false

        func run() async throws {
            let hub = try cacheOptions.makeHub()
            let result = hub.prune()
            for url in result.removed { print("removed \(url.path)") }
            var freed = result.freedBytes
            if features {
                for cache in FeatureCache.list(cacheDirectory: hub.cacheDirectory) { print("removed \(cache.folder.path)") }
                freed += try FeatureCache.removeAll(cacheDirectory: hub.cacheDirectory)
            }
            print("freed \(ByteCount.format(freed))")
        }
    }
}
