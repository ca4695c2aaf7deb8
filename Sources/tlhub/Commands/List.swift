import ArgumentParser
import Foundation
import TLHubClient

struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the artifacts tlhub can pull (or only those in the cache).",
        discussion: """
        Names read [source:]name[:variant]: `mobilenet_v2_100_224` (Keras, no top),
        `mobilenet_v2_100_224:top`, `tfhub:mobilenet_v2_100_224` (feature vector),
        `tfhub:mobilenet_v2_100_224:classification`, `imagenet_class_index`.

        Examples:
          tlhub list
          tlhub list --cached --json
        """)

    @OptionGroup var cacheOptions: CacheOptions

    @Flag(help: "Print JSON on stdout instead of a table.")
    var json = false

    @Flag(help: "Only artifacts present in the cache.")
    var cached = false

    func run() async throws {
        let hub = try cacheOptions.makeHub()
        var rows: [(artifact: Artifact, file: URL?)] = []
        for entry in try hub.registry.entries {
            let resolved = try? hub.resolve(entry.artifact.qualifiedName)
            let file = resolved.map(\.paths.file).flatMap { FileManager.default.fileExists(atPath: $0.path) ? $0 : nil }
            if cached && file == nil { continue }
            rows.append((entry.artifact, file))
        }
        if json {
            struct Row: Encodable {
                var artifact: Artifact
                var cached: String?
                func encode(to encoder: Encoder) throws {
                    try artifact.encode(to: encoder)
                    var container = encoder.container(keyedBy: Key.self)
                    try container.encode(artifact.qualifiedName, forKey: Key("qualified_name"))
                    try container.encode(cached, forKey: Key("cached_path"))
                }
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            let data = try encoder.encode(rows.map { Row(artifact: $0.artifact, cached: $0.file?.path) })
            print(String(decoding: data, as: UTF8.self))
            return
        }
        let width = rows.map(\.artifact.qualifiedName.count).max() ?? 0
        for row in rows {
            let artifact = row.artifact
            let name = artifact.qualifiedName.padding(toLength: width, withPad: " ", startingAt: 0)
            let size = artifact.size.map(ByteCount.format) ?? ""
            let mark = row.file == nil ? " " : "*"
            print("\(mark) \(name)  \(artifact.format.padding(toLength: 24, withPad: " ", startingAt: 0)) \(artifact.architecture ?? "")  \(size)")
        }
        FileHandle.standardError.write(Data("\(rows.count) artifacts (* = cached in \(hub.cacheDirectory.path))\n".utf8))
    }
}

/// A coding key made from any string.
struct Key: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ string: String) { stringValue = string }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}
