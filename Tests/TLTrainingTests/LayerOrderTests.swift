import Foundation
import Testing
import TLEngine

/// `finetune --unfreeze N` counts layers as Keras' `base.layers` lists them; the native zoo
/// builds must list them in the same order (weightless layers included).
@Suite("Native bases list their layers in Keras' order")
struct LayerOrderTests {
    static let order: [String: [String]] = {
        let url = NetworkFixtures.directory.appendingPathComponent("keras_layer_order.json")
        guard let data = try? Data(contentsOf: url) else { return [:] }
        return (try? JSONDecoder().decode([String: [String]].self, from: data)) ?? [:]
    }()

    @Test("the native graph's layers, input dropped, equal keras.applications' model.layers", arguments: order.keys.sorted())
    func kerasOrder(key: String) throws {
        let keras = try #require(Self.order[key])
        let graph = try Architecture(name: key).build(options: ApplicationOptions(includeTop: false))
        // DenseNet's tf.keras names (`conv1/conv`) are Keras 3's `conv1_conv`.
        let ours = graph.kerasLayerOrder.filter { !($0 is InputLayer) }.map { $0.name.replacingOccurrences(of: "/", with: "_") }
        #expect(ours.count == keras.count, "\(key): \(ours.count) layers, Keras \(keras.count)")
        let firstDifference = zip(ours, keras).enumerated().first { $0.element.0 != $0.element.1 }
        #expect(firstDifference == nil, "\(key): layer \(firstDifference?.offset ?? 0) is \(firstDifference?.element.0 ?? "") here, \(firstDifference?.element.1 ?? "") in Keras")
    }
}
