import Foundation

/// Picks the cache directory. Precedence, first match wins:
/// 1. an explicit directory (`--cache-dir`, or `Hub(cacheDirectory:)`);
/// 2. `$TLHUB_CACHE`;
/// 3. `./cache` when the current directory has one (as this repository does);
/// 4. `$XDG_CACHE_HOME/tlhub`, else `~/.cache/tlhub`.
public enum CacheDirectory {
    /// The directory the rule above selects, and which rule selected it.
    public static func resolve(explicit: URL? = nil,
                               environment: [String: String] = ProcessInfo.processInfo.environment,
                               currentDirectory: String = FileManager.default.currentDirectoryPath)
        -> (directory: URL, reason: String)
    {
        if let explicit { return (explicit, "--cache-dir") }
        if let value = environment["TLHUB_CACHE"], !value.isEmpty {
            return (URL(fileURLWithPath: value, isDirectory: true), "$TLHUB_CACHE")
        }
        let local = URL(fileURLWithPath: currentDirectory, isDirectory: true).appendingPathComponent("cache", isDirectory: true)
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: local.path, isDirectory: &isDirectory), isDirectory.boolValue {
            return (local, "./cache exists")
        }
        if let value = environment["XDG_CACHE_HOME"], !value.isEmpty {
            return (URL(fileURLWithPath: value, isDirectory: true).appendingPathComponent("tlhub", isDirectory: true), "$XDG_CACHE_HOME")
        }
        let home = environment["HOME"].map { URL(fileURLWithPath: $0, isDirectory: true) }
            ?? FileManager.default.homeDirectoryForCurrentUser
        return (home.appendingPathComponent(".cache/tlhub", isDirectory: true), "~/.cache")
    }
}
