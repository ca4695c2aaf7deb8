import Foundation
import TLImaging
import TLTraining

/// What `FineTuning` and `Training` both take from the command line: data split, optimizer,
/// loss options, the input pipeline and where TensorBoard logs go.
public protocol TrainingJobSettings {
    var validation: URL? { get set }
    var validationSplit: Double { get set }
    var optimizer: FineTuning.OptimizerChoice { get set }
    var labelSmoothing: Float { get set }
    var balancedClassWeights: Bool { get set }
    var options: TrainingOptions { get set }
    var size: String? { get set }
    var interpolation: Interpolation { get set }
    var preprocess: String? { get set }
    var augmentation: Augmentation { get set }
    var tensorBoard: URL? { get set }
    var backup: BackupSettings { get set }
}

extension FineTuning: TrainingJobSettings {}
extension Training: TrainingJobSettings {}
