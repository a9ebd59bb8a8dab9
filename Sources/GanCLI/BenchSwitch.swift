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
    /// `Sequential.fusesBiasSaturating`: a layer's bias and the sigmoid or tanh after it in one pass.
    case fuseBiasSigmoid = "fuse-bias-sigmoid"
    /// `WideKernels.enabled`: the AVX-512 or AVX2 kernels in C (Adam, uniforms, dropout).
    case wideKernels = "wide-kernels"
    /// `GANTrainer.joinsPerSampleBatches`: one discriminator call on real and fake joined.
    case joinDiscriminatorBatch = "join-discriminator-batch"
    /// `Runtime.stridedGradientPhases` 2 (on) against 0: stride-2 gradients as four stride-1 ones.
    case dnnlPhases = "dnnl-phases"
    /// `Runtime.stridedGradientPhases` 2 (on) against 1: the weight gradients' phases alone.
    case dnnlWeightPhases = "dnnl-weight-phases"
    /// `Runtime.implicitGemmConvolutions` 1 (2 with `GAN_IGEMM=2`) against 0: channels-last
    /// convolutions on the engine's implicit-GEMM kernels instead of oneDNN's.
    case implicitGemm = "implicit-gemm"
    /// `Runtime.winogradConvolutions` 1 against 0: the critic's 5×5 stride-2 passes as Winograd
    /// products instead of the implicit-GEMM kernels or oneDNN.
    case winograd = "winograd"
    /// `Runtime.winogradTile` 0 (the default) against 2: the critic's 7×7 layer as F(4×4, 3×3)
    /// products against its kernels (2×2 tiles are not taken on odd sides by default).
    case winograd4x4 = "winograd-4x4"
    /// The generator's activations channels-last (`Network.setChannelsLastGenerator`) against
    /// NCHW, on the same weights.
    case channelsLastGenerator = "channels-last-generator"
    /// `Runtime.adaptsWorkerSpin`: workers shorten their spin while it runs out, against the fixed spin.
    case adaptiveSpin = "adaptive-spin"
    /// `OpProfiler` running (what `--profile` costs a step).
    case opProfiler = "op-profiler"
    /// `Runtime.oneDNNMatmulMaxFlops` 2²⁸ (268 MFLOP; on, the default with AVX-512) against 2²⁶
    /// (67): a thread's part of a mid-sized product on oneDNN's matmul, or on OpenBLAS.
    case dnnlMatmulLarge = "dnnl-matmul-large"
    /// `Sequential.fusesLinear`: a dense layer, its bias and its activation as one op
    /// (`Tensor.linearActivated`), against the product and a bias-activation op after it.
    case fuseLinear = "fuse-linear"
    /// `GANTrainer.plansDenseSteps`: a dense model's iteration as a `DenseGANStep` (no graph,
    /// buffers allocated once) against the graph's step.
    case denseStep = "dense-step"

    /// Whether the switch is on for `trainer` (most switches are process-wide settings).
    func isOn(in trainer: GANTrainer) -> Bool {
        switch self {
        case .dnnlMatmul: return Runtime.usesOneDNNMatmul
        case .dnnlConvolution: return Runtime.usesOneDNN
        case .fuseBiasActivation: return Sequential.fusesBiasActivation
        case .fuseBiasSigmoid: return Sequential.fusesBiasSaturating
        case .wideKernels: return WideKernels.enabled
        case .joinDiscriminatorBatch: return GANTrainer.joinsPerSampleBatches
        case .dnnlPhases: return Runtime.stridedGradientPhases > 0
        case .dnnlWeightPhases: return Runtime.stridedGradientPhases == 2
        case .implicitGemm: return Runtime.implicitGemmConvolutions > 0
        case .winograd: return Runtime.winogradConvolutions > 0
        case .winograd4x4: return Runtime.winogradTile != 2
        case .channelsLastGenerator: return trainer.generator.channelsLastOutput
        case .adaptiveSpin: return Runtime.adaptsWorkerSpin
        case .opProfiler: return OpProfiler.isRunning
        case .dnnlMatmulLarge: return Runtime.oneDNNMatmulMaxFlops > Runtime.oneDNNMatmulBounds.small
        case .fuseLinear: return Sequential.fusesLinear
        case .denseStep: return GANTrainer.plansDenseSteps
        }
    }

    /// Sets the switch for `trainer`.
    func set(_ on: Bool, _ trainer: GANTrainer) {
        switch self {
        case .dnnlMatmul: Runtime.usesOneDNNMatmul = on
        case .dnnlConvolution: Runtime.usesOneDNN = on
        case .fuseBiasActivation: Sequential.fusesBiasActivation = on
        case .fuseBiasSigmoid: Sequential.fusesBiasSaturating = on
        case .wideKernels: WideKernels.enabled = on
        case .joinDiscriminatorBatch: GANTrainer.joinsPerSampleBatches = on
        case .dnnlPhases: Runtime.stridedGradientPhases = on ? 2 : 0
        case .dnnlWeightPhases: Runtime.stridedGradientPhases = on ? 2 : 1
        // On means the default mode (1), or every convolution that fits (2) with GAN_IGEMM=2.
        case .implicitGemm: Runtime.implicitGemmConvolutions = on ? Swift.max(Runtime.implicitGemmStartMode, 1) : 0
        // The model is built: its generator switches layout, not the default for new ones.
        case .winograd: Runtime.winogradConvolutions = on ? 1 : 0
        case .winograd4x4: Runtime.winogradTile = on ? 0 : 2
        case .channelsLastGenerator: trainer.generator.setChannelsLastGenerator(on)
        case .adaptiveSpin: Runtime.adaptsWorkerSpin = on
        case .opProfiler: if on { OpProfiler.start() } else { OpProfiler.stop() }
        case .dnnlMatmulLarge:
            Runtime.oneDNNMatmulMaxFlops = on ? Runtime.oneDNNMatmulBounds.midSized : Runtime.oneDNNMatmulBounds.small
        case .fuseLinear: Sequential.fusesLinear = on
        case .denseStep: GANTrainer.plansDenseSteps = on
        }
    }
}
