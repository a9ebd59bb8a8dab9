import ArgumentParser
import Engine
import GAN
import NN

/// A setting `gan bench train --alternate` turns off and on between blocks of steps of one
/// training run. The host's speed drifts by ±20 % within minutes, so two processes run one after
/// the other cannot resolve a change of a few percent; blocks of steps interleaved in one
/// process see the same drift.
enum BenchSwitch: String, CaseIterable, ExpressibleByArgument {
    /// `Runtime.usesOneDNNMatmul`: small products on oneDNN's matmul (brgemm, or gemm:jit without AVX-512).
    case dnnlMatmul = "dnnl-matmul"
    /// `Runtime.usesOneDNN`: convolutions on oneDNN.
    case dnnlConvolution = "dnnl-convolution"
    /// `Sequential.fusesBiasActivation`: a layer's bias and its activation in one pass.
    case fuseBiasActivation = "fuse-bias-activation"
    /// `WideKernels.enabled`: the AVX-512 or AVX2 kernels in C (Adam, uniforms, dropout).
    case wideKernels = "wide-kernels"
    /// `GANTrainer.joinsPerSampleBatches`: one discriminator call on real and fake joined.
    case joinDiscriminatorBatch = "join-discriminator-batch"
    /// `Runtime.stridedGradientPhases` 2 (on) against 0: stride-2 gradients as four stride-1 ones.
    case dnnlPhases = "dnnl-phases"
    /// `Runtime.stridedGradientPhases` 2 (on) against 1: the weight gradients' phases alone.
    case dnnlWeightPhases = "dnnl-weight-phases"
    /// `Runtime.implicitGemmConvolutions` 1 (on; 2 on AVX-512 CPUs) against 0: channels-last
    /// convolutions on the engine's implicit-GEMM kernels instead of oneDNN's.
    case implicitGemm = "implicit-gemm"
    /// The generator's activations channels-last (`Network.setChannelsLastGenerator`) against
    /// NCHW, on the same weights.
    case channelsLastGenerator = "channels-last-generator"

    /// Whether the switch is on for `trainer`'s models.
    func isOn(in trainer: GANTrainer) -> Bool {
        self == .channelsLastGenerator ? trainer.generator.channelsLastOutput : isOn
    }

    /// Sets the switch, and what it changes in `trainer`'s models.
    func set(_ on: Bool, _ trainer: GANTrainer) {
        isOn = on
        if self == .channelsLastGenerator { trainer.generator.setChannelsLastGenerator(on) }
    }

    var isOn: Bool {
        get {
            switch self {
            case .dnnlMatmul: return Runtime.usesOneDNNMatmul
            case .dnnlConvolution: return Runtime.usesOneDNN
            case .fuseBiasActivation: return Sequential.fusesBiasActivation
            case .wideKernels: return WideKernels.enabled
            case .joinDiscriminatorBatch: return GANTrainer.joinsPerSampleBatches
            case .dnnlPhases: return Runtime.stridedGradientPhases > 0
            case .dnnlWeightPhases: return Runtime.stridedGradientPhases == 2
            case .implicitGemm: return Runtime.implicitGemmConvolutions > 0
            case .channelsLastGenerator: return ModelZoo.channelsLastGenerator
            }
        }
        nonmutating set {
            switch self {
            case .dnnlMatmul: Runtime.usesOneDNNMatmul = newValue
            case .dnnlConvolution: Runtime.usesOneDNN = newValue
            case .fuseBiasActivation: Sequential.fusesBiasActivation = newValue
            case .wideKernels: WideKernels.enabled = newValue
            case .joinDiscriminatorBatch: GANTrainer.joinsPerSampleBatches = newValue
            case .dnnlPhases: Runtime.stridedGradientPhases = newValue ? 2 : 0
            case .dnnlWeightPhases: Runtime.stridedGradientPhases = newValue ? 2 : 1
            // On AVX-512 CPUs, on means forced on (2): the AVX2 kernels against oneDNN's AVX-512 ones.
            case .implicitGemm: Runtime.implicitGemmConvolutions = newValue ? (Runtime.cpuHasAVX512 ? 2 : 1) : 0
            case .channelsLastGenerator: ModelZoo.channelsLastGenerator = newValue
            }
        }
    }
}
