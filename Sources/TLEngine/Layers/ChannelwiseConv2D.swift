import Foundation
import TLTensor

/// Keras `Conv2D` with `groups == filters == input channels` (ConvNeXt's 7×7 "depthwise_conv"):
/// a depthwise convolution stored in Conv2D layout.
///
/// - `kernel`: `[kernelHeight, kernelWidth, 1, channels]`
/// - `bias`: `[channels]` when `useBias`
///
/// The kernel's memory order equals a depthwise kernel `[kh, kw, channels, 1]`, so it runs on
/// `DepthwiseConv2D`'s channel-vectorized loop instead of one tiny GEMM per group.
public final class ChannelwiseConv2D: Layer {
    public let name: String
    /// Channels in and out.
    public let channels: Int
    /// The depthwise layer that holds the weights and runs the pass.
    package let depthwise: DepthwiseConv2D
    public var parameterVersion: Int { depthwise.parameterVersion }

    /// Creates the convolution with weights to be loaded later.
    public init(name: String, channels: Int, kernelSize: (Int, Int), strides: (Int, Int) = (1, 1),
                padding: Padding = .valid, useBias: Bool = true, activation: Activation = .linear) {
        self.name = name
        self.channels = channels
        depthwise = DepthwiseConv2D(name: name, kernelSize: kernelSize, strides: strides, padding: padding,
                                    useBias: useBias, activation: activation)
    }

    public func outputShape(inputShapes: [[Int]]) throws -> [Int] {
        guard inputShapes[0].last == channels else {
            throw EngineError.incompatibleShapes(layer: name, detail: "groups=\(channels) needs \(channels) input channels, got per-sample shape \(inputShapes[0])")
        }
        return try depthwise.outputShape(inputShapes: inputShapes)
    }

    public func expectedWeights(inputShapes: [[Int]]) -> [WeightSpec] {
        var specs = [WeightSpec("kernel", [depthwise.kernelSize.0, depthwise.kernelSize.1, 1, channels])]
        if depthwise.useBias { specs.append(WeightSpec("bias", [channels])) }
        return specs
    }

    public func setWeights(_ weights: [String: Tensor]) {
        var translated: [String: Tensor] = [:]
        if let kernel = weights["kernel"] {
            translated["depthwise_kernel"] = kernel.reshaped([kernel.shape[0], kernel.shape[1], channels, 1])
        }
        translated["bias"] = weights["bias"]
        depthwise.setWeights(translated)
    }

    public var weights: [String: Tensor] {
        let kernel = depthwise.kernel
        var result = ["kernel": kernel.count == 0 ? kernel : kernel.reshaped([kernel.shape[0], kernel.shape[1], 1, channels])]
        if let bias = depthwise.bias { result["bias"] = bias }
        return result
    }

    public func forward(_ inputs: [ActivationView], into output: MutableActivationView, scratch: UnsafeMutablePointer<Float>) {
        depthwise.forward(inputs, into: output, scratch: scratch)
    }
}
