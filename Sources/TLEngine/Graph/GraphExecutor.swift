import Foundation
import TLTensor

/// Runs a `Graph` for one batch size and input size, with every buffer allocated up front.
///
/// Node outputs share a small pool of buffers: a buffer is reused as soon as the last node
/// reading it has run, so memory stays near the two or three largest activations instead of
/// their sum. Identity layers (flatten, reshape, dropout) alias their input. Repeated calls with
/// the same input shapes allocate nothing but the returned tensors.
public final class GraphExecutor {
    /// The graph this executor runs.
    public let graph: Graph
    /// Full input shapes, batch first, the plan was made for.
    public let inputShapes: [[Int]]
    private var buffers: [UnsafeMutablePointer<Float>] = []
    private let bufferCapacities: [Int]
    private let nodeBuffers: [Int]
    private let shapes: [[Int]]
    private let scratch: UnsafeMutablePointer<Float>
    private let scratchCapacity: Int
    /// Per node: views of its inputs and output, made once so a run allocates nothing.
    private var inputViews: [[ActivationView]] = []
    private var outputViews: [MutableActivationView] = []

    /// Plans buffers for `inputShapes` (full shapes, batch first).
    /// - Throws: `EngineError.inputShapeMismatch` when an input does not fit its `InputLayer`.
    public init(graph: Graph, inputShapes: [[Int]]) throws {
        self.graph = graph
        self.inputShapes = inputShapes
        guard inputShapes.count == graph.inputs.count else {
            throw EngineError.inputShapeMismatch(expected: "\(graph.inputs.count) input(s)", actual: inputShapes.first ?? [])
        }
        let batch = inputShapes[0].first ?? 0
        guard batch > 0 else {
            throw EngineError.inputShapeMismatch(expected: "at least one sample", actual: inputShapes[0])
        }
        // Shapes for this input size.
        var sampleShapes = [[Int]](repeating: [], count: graph.nodes.count)
        for (index, node) in graph.nodes.enumerated() {
            if let inputIndex = graph.inputs.firstIndex(of: index) {
                let declared = graph.shapes[index]
                let given = Array(inputShapes[inputIndex].dropFirst())
                let fits = given.count == declared.count && zip(declared, given).allSatisfy { $0 < 0 || $0 == $1 }
                guard fits, inputShapes[inputIndex].first == batch else {
                    let expected = "[N, " + declared.map { $0 < 0 ? "any" : String($0) }.joined(separator: ", ") + "]"
                    throw EngineError.inputShapeMismatch(expected: expected, actual: inputShapes[inputIndex])
                }
                sampleShapes[index] = given
            } else {
                sampleShapes[index] = try node.layer.outputShape(inputShapes: node.inputs.map { sampleShapes[$0] })
                if sampleShapes[index].contains(where: { $0 <= 0 }) {
                    throw EngineError.incompatibleShapes(layer: node.layer.name, detail: "output shape \(sampleShapes[index]) is empty for input \(inputShapes[0])")
                }
            }
        }
        let shapes = sampleShapes.map { [batch] + $0 }
        self.shapes = shapes
        // Every layer packs its weights for these shapes, layers spread over the cores (packing is
        // a fresh page per 1,024 weights: a third of a one-image `tlhub features`' page faults).
        // A layer's packings are locked, so a layer in two nodes packs once.
        let nodes = graph.nodes
        concurrentPerform(iterations: nodes.count) { index in
            nodes[index].layer.prepare(inputShapes: nodes[index].inputs.map { shapes[$0] })
        }

        // Buffer assignment by liveness: a buffer is free once every node stored in it has been
        // read for the last time (graph outputs are never freed).
        let nodeCount = graph.nodes.count
        var lastRead = Array(0..<nodeCount)
        for (index, node) in graph.nodes.enumerated() { for input in node.inputs { lastRead[input] = max(lastRead[input], index) } }
        for output in graph.outputs { lastRead[output] = Int.max }
        var nodeBuffers = [Int](repeating: -1, count: nodeCount)
        var capacities: [Int] = []
        var bufferLastUse: [Int] = []
        var isFree: [Bool] = []
        var scratchCapacity = 0
        for (index, node) in graph.nodes.enumerated() {
            for buffer in capacities.indices where !isFree[buffer] && bufferLastUse[buffer] < index { isFree[buffer] = true }
            let count = shapes[index].reduce(1, *)
            let chosen: Int
            if node.layer.isIdentity, let source = node.inputs.first {
                chosen = nodeBuffers[source]
            } else if let position = node.layer.overwritableInput, position < node.inputs.count,
                      case let buffer = nodeBuffers[node.inputs[position]], bufferLastUse[buffer] == index,
                      capacities[buffer] >= count, node.inputs.filter({ nodeBuffers[$0] == buffer }).count == 1 {
                // The output over an input this node reads last (a residual): one tensor less to
                // stream through the cache. No other input of the node may share that buffer.
                chosen = buffer
            } else {
                let free = capacities.indices.filter { isFree[$0] }
                if let best = free.filter({ capacities[$0] >= count }).min(by: { capacities[$0] < capacities[$1] }) {
                    chosen = best
                } else if let largest = free.max(by: { capacities[$0] < capacities[$1] }) {
                    chosen = largest
                    capacities[largest] = count
                } else {
                    chosen = capacities.count
                    capacities.append(count)
                    bufferLastUse.append(index)
                    isFree.append(false)
                }
                isFree[chosen] = false
                bufferLastUse[chosen] = index
            }
            if !node.layer.isIdentity {
                scratchCapacity = max(scratchCapacity, node.layer.scratchCount(inputs: node.inputs.map { shapes[$0] }, output: shapes[index]))
            }
            nodeBuffers[index] = chosen
            bufferLastUse[chosen] = max(bufferLastUse[chosen], lastRead[index])
        }
        self.nodeBuffers = nodeBuffers
        bufferCapacities = capacities
        buffers = capacities.map { capacity in
            let pointer = UnsafeMutablePointer<Float>.allocate(capacity: max(capacity, 1))
            pointer.initialize(repeating: 0, count: max(capacity, 1))
            return pointer
        }
        self.scratchCapacity = scratchCapacity
        scratch = .allocate(capacity: max(scratchCapacity, 1))
        scratch.initialize(repeating: 0, count: max(scratchCapacity, 1))
        let buffers = self.buffers
        inputViews = graph.nodes.map { node in
            node.inputs.map { ActivationView(data: buffers[nodeBuffers[$0]], shape: shapes[$0]) }
        }
        outputViews = (0..<nodeCount).map { MutableActivationView(data: buffers[nodeBuffers[$0]], shape: shapes[$0]) }
    }

    deinit {
        for buffer in buffers { buffer.deallocate() }
        scratch.deallocate()
    }

    /// The largest node output per sample, in floats (decides how many images run at once). A
    /// stem fused into an `InvertedResidual` counts its output as well: the micro-batch sizes were
    /// measured with MobileNetV2's stem output as a tensor of its own (the largest), and with it
    /// fused away, 16 images per pass instead of 8 ran no faster. So does the expansion of a block
    /// without a projection (EfficientNet's, the largest tensor of its unfused graph).
    public var largestActivationPerSample: Int {
        let batch = max(inputShapes[0].first ?? 1, 1)
        let stems = graph.nodes.compactMap { node in
            (node.layer as? InvertedResidual)?.expansionOutputCount(inputShape: shapes[node.inputs[0]])
        }
        return (shapes.map { $0.reduce(1, *) } + stems).max().map { $0 / batch } ?? 0
    }

    /// Bytes held by activation buffers and scratch.
    public var allocatedBytes: Int { (bufferCapacities.reduce(0, +) + scratchCapacity) * MemoryLayout<Float>.size }

    /// Runs the graph `passes` times after one warm-up and reports each layer's mean wall time,
    /// slowest first (for `tlhub bench --profile`).
    public func profile(_ inputs: [Tensor], passes: Int = 20) throws -> [(layer: String, seconds: Double)] {
        _ = try run(inputs)
        let clock = ContinuousClock()
        let timed = graph.nodes.indices.filter { !graph.nodes[$0].layer.isIdentity }
        var totals = [Double](repeating: 0, count: graph.nodes.count)
        for _ in 0..<max(passes, 1) {
            for index in timed {
                let start = clock.now
                graph.nodes[index].layer.forward(inputViews[index], into: outputViews[index], scratch: scratch)
                let elapsed = clock.now - start
                totals[index] += Double(elapsed.components.attoseconds) / 1e18 + Double(elapsed.components.seconds)
            }
        }
        return timed.map { (graph.nodes[$0].layer.name, totals[$0] / Double(max(passes, 1))) }.sorted { $0.seconds > $1.seconds }
    }

    /// Runs the graph.
    /// - Parameter inputs: one tensor per graph input, shaped as `inputShapes`.
    /// - Returns: one tensor per graph output.
    /// - Throws: `EngineError.inputShapeMismatch` for inputs of another shape than planned.
    public func run(_ inputs: [Tensor]) throws -> [Tensor] {
        guard inputs.map(\.shape) == inputShapes else {
            throw EngineError.inputShapeMismatch(expected: "\(inputShapes)", actual: inputs.first?.shape ?? [])
        }
        for (position, index) in graph.inputs.enumerated() {
            inputs[position].scalars.withUnsafeBufferPointer { source in
                buffers[nodeBuffers[index]].update(from: source.baseAddress!, count: source.count)
            }
        }
        return runNodes(samples: inputShapes[0][0])
    }

    /// Runs a one-input graph on samples `samples` of `input`, copied straight into the input
    /// buffer (zeros after them up to the planned batch): a micro-batch of a larger batch without
    /// a copy of its slice.
    /// - Returns: one tensor per graph output, `samples.count` samples each.
    /// - Throws: `EngineError.inputShapeMismatch` for a graph of several inputs, an input of
    ///   another sample shape, or more samples than planned.
    public func run(_ input: Tensor, samples: Range<Int>) throws -> [Tensor] {
        let planned = inputShapes[0]
        guard graph.inputs.count == 1, Array(input.shape.dropFirst()) == Array(planned.dropFirst()),
              samples.lowerBound >= 0, samples.upperBound <= input.shape[0], samples.count <= planned[0] else {
            throw EngineError.inputShapeMismatch(expected: "\(planned)", actual: input.shape)
        }
        let perSample = planned.dropFirst().reduce(1, *)
        let destination = buffers[nodeBuffers[graph.inputs[0]]]
        input.scalars.withUnsafeBufferPointer { source in
            destination.update(from: source.baseAddress! + samples.lowerBound * perSample, count: samples.count * perSample)
        }
        (destination + samples.count * perSample).update(repeating: 0, count: (planned[0] - samples.count) * perSample)
        return runNodes(samples: samples.count)
    }

    /// Runs every node on the filled input buffers; returns the outputs' first `samples` samples.
    private func runNodes(samples: Int) -> [Tensor] {
        for (index, node) in graph.nodes.enumerated() where !node.layer.isIdentity {
            node.layer.forward(inputViews[index], into: outputViews[index], scratch: scratch)
        }
        return graph.outputs.map { index in
            let shape = [samples] + shapes[index].dropFirst()
            return Tensor(shape: shape, scalars: Array(UnsafeBufferPointer(start: buffers[nodeBuffers[index]], count: shape.reduce(1, *))))
        }
    }
}
