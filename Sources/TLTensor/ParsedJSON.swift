import Foundation

/// JSON objects parsed from text, the last one kept: a model config (160 KB for MobileNetV2) is
/// read by the weight reader and again by the graph reader, and `JSONSerialization` takes ~10 ms
/// over it — a noticeable share of a warm `finetune`. Parsed values are never mutated.
public enum ParsedJSON {
    nonisolated(unsafe) private static var last: (text: String, object: [String: Any])?
    private static let lock = NSLock()

    /// The JSON object `text` holds, or nil when it is not one.
    public static func object(_ text: String) -> [String: Any]? {
        if let hit = lock.withLock({ last.flatMap { $0.text == text ? $0.object : nil } }) { return hit }
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else { return nil }
        lock.withLock { last = (text, object) }
        return object
    }
}
