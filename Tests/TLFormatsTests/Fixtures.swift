import Foundation

/// Locates the committed fixtures of the formats area.
enum Fixtures {
    static let directory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/formats")

    static func url(_ name: String) -> URL { directory.appendingPathComponent(name) }
}
