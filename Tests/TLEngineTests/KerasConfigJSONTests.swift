import Foundation
import Testing
@testable import TLEngine

/// The model config's JSON writer: what `JSONSerialization` (`.sortedKeys`) reads back as the
/// same object, keys in sorted order, strings escaped.
@Suite("Keras model config JSON")
struct KerasConfigJSONTests {
    @Test("every value type a config holds reads back equal, keys sorted, strings escaped")
    func roundTrip() throws {
        let object: [String: Any] = [
            "name": "block_1/conv \"a\"\\b\n\t\u{01}é", "units": 1024, "epsilon": 0.0010000000474974513, "scale": Float(1.5),
            "tiny": 1e-7, "negative": -3, "flags": [true, false], "nothing": NSNull(), "kernel_size": [3, 3],
            "padding": [[1, 0], [0, 1]], "mean": [123.675, 116.28, 103.53], "inbound_nodes": [[["in", 0, 0, [String: Any]()]]],
            "Zeta": "capital sorts first",
        ]
        var json = ""
        try KerasConfigWriter.writeJSON(object, to: &json)
        let parsed = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? NSDictionary)
        let reference = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])
        #expect(parsed == (try JSONSerialization.jsonObject(with: reference) as? NSDictionary))
        let keyOrder = ["Zeta", "epsilon", "flags", "inbound_nodes", "kernel_size", "mean", "name", "negative", "nothing", "padding", "scale", "tiny", "units"]
        let positions = keyOrder.map { try? #require(json.range(of: "\"\($0)\":")).lowerBound }
        #expect(positions == positions.sorted { $0! < $1! }, "keys not in sorted order: \(json)")
        #expect(json.contains(#""flags":[true,false]"#) && json.contains(#""nothing":null"#) && json.contains(#""units":1024"#))
        #expect(throws: EngineError.self) { var out = ""; try KerasConfigWriter.writeJSON(["x": Double.nan], to: &out) }
    }
}
