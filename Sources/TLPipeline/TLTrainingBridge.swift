import Foundation
import TLEngine
import TLTraining

/// Builds heads from descriptions (the training library owns the grammar).
enum TLTrainingBridge {
    static func headGraph(description: FineTunedDescription) throws -> Graph {
        try Head(parsing: description.head).build(inputShape: description.headInputShape, seed: 0)
    }
}
