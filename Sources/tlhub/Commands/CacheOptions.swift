import ArgumentParser
import Foundation
import TLHubClient

/// Options shared by every command that reads or fills the cache.
struct CacheOptions: ParsableArguments {
    @Option(name: .customLong("cache-dir"), help: ArgumentHelp(
        "Cache directory (default: $TLHUB_CACHE, else ./cache if it exists, else $XDG_CACHE_HOME/tlhub or ~/.cache/tlhub).",
        valueName: "dir"), transform: { URL(fileURLWithPath: $0, isDirectory: true) })
    var cacheDirectory: URL?

    @Option(name: .customLong("manifests"), help: ArgumentHelp(
        "A directory of extra manifest *.json files (repeatable; also $TLHUB_MANIFESTS, colon-separated).",
        valueName: "dir"), transform: { URL(fileURLWithPath: $0, isDirectory: true) })
    var manifestDirectories: [URL] = []

    @Option(help: ArgumentHelp(
        "Fetch from this mirror: published URLs keep their path on its scheme and host (also $TLHUB_ENDPOINT).",
        valueName: "url"))
    var mirror: String?

    @Flag(help: "Never touch the network; fail naming what is missing (also TLHUB_OFFLINE=1).")
    var offline = false

    func validate() throws {
        if let mirror {
            guard let url = URL(string: mirror), let scheme = url.scheme?.lowercased(),
                  ["http", "https", "file"].contains(scheme) else {
                throw ValidationError("--mirror must be an http(s):// or file:// URL, got '\(mirror)'")
            }
        }
    }

    /// A hub configured from these options and the environment.
    func makeHub() throws -> Hub {
        try Hub(cacheDirectory: cacheDirectory, manifestDirectories: manifestDirectories,
                mirror: mirror.flatMap(URL.init(string:)), offline: offline ? true : nil)
    }
}
