import Reference
import TestSupport

// MARK: - Intensity augmentation

/// Images (N, C, H, W) in [-0.5, 1.5) (negative values exercise gamma's sign), one parameter set
/// per sample. Variant 0: every sample gets all five transforms (noise, blur with sigmas up to
/// 1.3, so taps reach 5 pixels, past the 3- and 5-pixel sides, gamma, bias field, inversion);
/// variant 1: the protocol's own draws (`sampleIntensityParameters`), so some samples skip some
/// transforms; variant 2: those draws switched as an ablation switches them (`verify ablate`: noise
/// sigma a hundredth, blur left out). Widths below, at and past the 8-lane blocks.
package struct IntensityAugmentationKernel: CatalogKernel {
  package let name = "intensityAugmentation"
  package let tolerance = Tolerance.float32Kernel
  package let cases = [
    KernelShape(1, 1, 9, 13), KernelShape(3, 1, 5, 3), KernelShape(2, 2, 3, 16, variant: 0),
    KernelShape(4, 1, 17, 9), KernelShape(3, 1, 8, 24, variant: 1), KernelShape(16, 1, 32, 32, variant: 1),
    KernelShape(6, 1, 9, 13, variant: 2),
  ]

  package init() {}

  package func prepare<B: Backend>(_ b: B, _ s: KernelShape, _ inputs: inout SeededInputs) -> PreparedKernel {
    let images = tensor(s.shape, inputs.uniform(s.shape.count, -0.5, 1.5), for: b)
    let parameters = (0..<s.n).map { n -> IntensityParameters in
      if s.variant == 1 { return sampleIntensityParameters(rng: &inputs.rng) }
      if s.variant == 2 {
        return sampleIntensityParameters(rng: &inputs.rng, switches: AugmentationSwitches(noiseScale: 0.01, leftOut: [.blur]))
      }
      let p = IntensityAugmentationDistribution.self
      return IntensityParameters(
        noise: NoiseParameters(sigma: inputs.rng.uniform(0, p.maxNoiseSigma), seed: inputs.rng.next()),
        blur: BlurParameters(sigmaX: inputs.rng.uniform(0, p.maxBlurSigma), sigmaY: inputs.rng.uniform(0, p.maxBlurSigma)),
        logGamma: inputs.rng.uniform(-p.maxLogGamma, p.maxLogGamma),
        biasCoefficients: (0..<biasFieldTermCount).map { _ in inputs.rng.uniform(-p.maxBiasCoefficient, p.maxBiasCoefficient) },
        invert: n % 2 == 0)
    }
    return PreparedKernel(forward: {
      [KernelOutput("augmented", b.augmentIntensity(batch: images, parameters: parameters))]
    })
  }
}
