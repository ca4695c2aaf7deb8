import CKernels
import Foundation
import TLTensor

/// Keras `SeparableConv2D`: a depthwise convolution (no bias) then a 1×1 convolution.
///
/// - `depthwise_kernel`: `[kh, kw, in, depthMultiplier]`
/// - `pointwise_kernel`: `[1, 1, in * depthMultiplier, filters]`
/// - `bias`: `[filters]` when `useBias`
public final class SeparableConv2D: Layer {
    public let name: String
    package let depthwise: DepthwiseConv2D
    package let pointwise: Conv2D

    /// Creates a separable convolution with weights to be loaded later.
    public init(name: String, filters: Int, kernelSize: (Int, Int), strides: (Int, Int) = (1, 1),
                dilation: (Int, Int) = (1, 1), padding: Padding = .valid, depthMultiplier: Int = 1,
                useBias: Bool = true, activation: Activation = .linear) {
        self.name = name
        depthwise = DepthwiseConv2D(name: name, kernelSize: kernelSize, strides: strides, dilation: dilation,
                                    padding: padding, depthMultiplier: depthMultiplier, useBias: false)
        pointwise = Conv2D(name: name, filters: filters, kernelSize: (1, 1), useBias: useBias, activation: activation)
    }

    public func outputShape(inputShapes: [[Int]]) throws -> [Int] {
        try pointwise.outputShape(inputShapes: [try depthwise.outputShape(inputShapes: inputShapes)])
    }

    public func expectedWeights(inputShapes: [[Int]]) -> [WeightSpec] {
        let channels = inputShapes[0].last ?? 0
        var specs = [WeightSpec("depthwise_kernel", [depthwise.kernelSize.0, depthwise.kernelSize.1, channels, depthwise.depthMultiplier]),
                     WeightSpec("pointwise_kernel", [1, 1, channels * depthwise.depthMultiplier, pointwise.filters])]
        if pointwise.useBias { specs.append(WeightSpec("bias", [pointwise.filters])) }
        return specs
    }

    public func setWeights(_ weights: [String: Tensor]) {
        depthwise.setWeights(["depthwise_kernel": weights["depthwise_kernel"] ?? Tensor(shape: [0])])
        var pointwiseWeights = ["kernel": weights["pointwise_kernel"] ?? Tensor(shape: [0])]
        pointwiseWeights["bias"] = weights["bias"]
        pointwise.setWeights(pointwiseWeights)
    }

    public var weights: [String: Tensor] {
        var result = ["depthwise_kernel": depthwise.kernel, "pointwise_kernel": pointwise.kernel]
        if let bias = pointwise.bias { result["bias"] = bias }
        return result
    }

    public func scratchCount(inputs: [[Int]], output: [Int]) -> Int {
        output[0] * output[1] * output[2] * inputs[0][3] * depthwise.depthMultiplier
    }

    public func prepare() { pointwise.prepare() }
    public var parameterVersion: Int { max(depthwise.parameterVersion, pointwise.parameterVersion) }

    public func forward(_ inputs: [ActivationView], into output: MutableActivationView, scratch: UnsafeMutablePointer<Float>) {
        let middleShape = Array(output.shape.dropLast()) + [inputs[0].shape[3] * depthwise.depthMultiplier]
        depthwise.forward(inputs, into: MutableActivationView(data: scratch, shape: middleShape), scratch: scratch)
        pointwise.forward([ActivationView(data: scratch, shape: middleShape)], into: output, scratch: scratch)
    }
}
