/// Keras 3 stores a layer's variables as `vars/0`, `vars/1`, … (trainable first, then
/// non-trainable, each in build order). This table gives them their Keras names.
///
/// Keys are Keras 3's snake_case class names as they appear in `.weights.h5` paths. Orders are
/// from Keras 3's `build()` methods (keras/src/layers/…); optional weights are dropped from the
/// end (bias) or, for normalization layers, by the `center`/`scale` options.
public enum Keras3WeightNames {
    /// The Keras names of `count` variables of a layer whose path key is `classKey`.
    /// - Parameters:
    ///   - center: `center` of a normalization layer when the config is known.
    ///   - scale: `scale` of a normalization layer when the config is known.
    public static func names(classKey: String, count: Int, center: Bool? = nil, scale: Bool? = nil) -> [String] {
        let names: [String]
        switch classKey {
        case "conv1d", "conv2d", "conv3d", "conv1d_transpose", "conv2d_transpose", "conv3d_transpose", "dense", "einsum_dense":
            names = ["kernel", "bias"]
        case "depthwise_conv1d", "depthwise_conv2d":
            // Keras 3 calls it `kernel`; tf.keras 2 files and the published weights say `depthwise_kernel`.
            names = ["depthwise_kernel", "bias"]
        case "separable_conv1d", "separable_conv2d":
            names = ["depthwise_kernel", "pointwise_kernel", "bias"]
        case "batch_normalization":
            names = normalization(count: count, center: center, scale: scale, statistics: ["moving_mean", "moving_variance"])
        case "layer_normalization", "group_normalization", "rms_normalization":
            names = normalization(count: count, center: center, scale: scale, statistics: [])
        case "normalization":
            names = ["mean", "variance", "count"]
        case "embedding":
            names = ["embeddings"]
        case "p_re_lu", "prelu":
            names = ["alpha"]
        case "layer_scale":
            // ConvNeXt's LayerScale: an unnamed variable (`variable`) in Keras 3, `gamma` in tf.keras.
            names = ["gamma"]
        default:
            names = []
        }
        return (0..<count).map { $0 < names.count ? names[$0] : "var_\($0)" }
    }

    /// gamma (when `scale`), beta (when `center`), then the statistics. Without a config a
    /// missing weight is taken to be gamma (`scale=False` is what keras.applications uses,
    /// e.g. InceptionV3).
    private static func normalization(count: Int, center: Bool?, scale: Bool?, statistics: [String]) -> [String] {
        let optional = count - statistics.count
        let hasScale: Bool
        let hasCenter: Bool
        if let center, let scale {
            hasScale = scale
            hasCenter = center
        } else {
            hasScale = optional >= 2
            hasCenter = optional >= 1
        }
        return (hasScale ? ["gamma"] : []) + (hasCenter ? ["beta"] : []) + statistics
    }
}
