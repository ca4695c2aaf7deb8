import CKernels

/// A development switch for comparing two versions of an engine decision in one process:
/// `tlhub bench --alternate` plans and runs one copy of the model with `EngineVariant.isOn`
/// false and another with it true, pass by pass, so the host's swings (±30 % between runs on
/// a shared VM) fall on both alike. Code under trial reads it where the two versions differ;
/// nothing in the product does otherwise, and then both copies run the same engine (an A/A
/// run: the spread it reports is the measurement's own).
public enum EngineVariant {
    /// Also sets the C kernels' `tl_engine_variant`.
    nonisolated(unsafe) public static var isOn = false {
        didSet { tl_set_engine_variant(isOn ? 1 : 0) }
    }
}
