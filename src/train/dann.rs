//! Domain adaptation by adversarial training (DANN; Ganin et al., JMLR 2016): the features the
//! head learns (its hidden layer, and the unfrozen blocks before it when fine-tuning) are trained
//! so that a domain classifier cannot tell labelled source images from unlabelled target images,
//! while the label classifier still learns from the source labels.
//!
//! `h = features(x)` (the head's hidden layer), `y = classify(h)`, `d = D(GRL(h))` with
//! `D: Linear(H, 100) -> ReLU -> Linear(100, 2)` (`domain.hidden`, `domain.output`). Each step
//! pairs a batch of labelled source samples with as many target samples:
//! `L = CE(y_src, labels) + CE(d, [0 .. 0 (source), 1 .. 1 (target)])`. The gradient reversal
//! layer is the identity forward and multiplies the gradient by `-lambda` backward, so that the
//! domain classifier minimises the domain loss while the features maximise it;
//! `lambda = w (2 / (1 + exp(-10 p)) - 1)` over training progress `p` in [0, 1] (the paper's
//! schedule, `w` the strength). `tests/reference/dann_reference.py` is the PyTorch twin.

use candle_core::{DType, Result, Tensor};
use candle_nn::{Linear, Module, VarBuilder};

/// Hidden units of the domain classifier.
pub const DOMAIN_HIDDEN: usize = 100;

/// The domain classifier: source (class 0) or target (class 1).
#[derive(Debug, Clone)]
pub struct DomainClassifier {
    hidden: Linear,
    output: Linear,
}

impl DomainClassifier {
    /// `Linear(in_dim, DOMAIN_HIDDEN) -> ReLU -> Linear(DOMAIN_HIDDEN, 2)` under `vb`
    /// (`hidden.*`, `output.*`).
    pub fn load(in_dim: usize, vb: VarBuilder) -> Result<Self> {
        let hidden = candle_nn::linear(in_dim, DOMAIN_HIDDEN, vb.pp(crate::model::names::HIDDEN))?;
        let output = candle_nn::linear(DOMAIN_HIDDEN, 2, vb.pp(crate::model::names::OUTPUT))?;
        Ok(Self { hidden, output })
    }

    /// Domain logits `(B, 2)` of features `h`.
    pub fn logits(&self, h: &Tensor) -> Result<Tensor> {
        self.output.forward(&self.hidden.forward(h)?.relu()?)
    }
}

/// The reversal coefficient at training progress `progress` (0..1) for strength `weight`.
pub fn grl_lambda(progress: f64, weight: f64) -> f64 {
    weight * (2.0 / (1.0 + (-10.0 * progress.clamp(0.0, 1.0)).exp()) - 1.0)
}

/// The gradient reversal layer: `x` forward; backward, the gradient times `-lambda`
/// (`x (1 + lambda) - x lambda` with the first term detached).
pub fn reverse_gradient(x: &Tensor, lambda: f64) -> Result<Tensor> {
    (x.detach() * (1.0 + lambda))? - (x * lambda)?
}

/// One step's losses and how often the domain classifier was right.
pub struct DannLosses {
    /// Cross-entropy of the source labels.
    pub label: Tensor,
    /// Cross-entropy of the domains (source 0, target 1), over both batches.
    pub domain: Tensor,
    /// `label + domain`: what the step differentiates.
    pub total: Tensor,
    /// Samples of the two batches whose domain the classifier got right.
    pub domain_correct: usize,
}

/// The losses of one DANN step: `logits` of the source batch with its `labels`, and the
/// features `h_source`, `h_target` of both batches for the domain classifier through the
/// reversal at `lambda`.
pub fn dann_losses(
    logits: &Tensor,
    labels: &Tensor,
    (h_source, h_target): (&Tensor, &Tensor),
    domain: &DomainClassifier,
    lambda: f64,
) -> Result<DannLosses> {
    let label = candle_nn::loss::cross_entropy(logits, labels)?;
    let h = Tensor::cat(&[h_source, h_target], 0)?;
    let d = domain.logits(&reverse_gradient(&h, lambda)?)?;
    let (n_source, n_target) = (h_source.dim(0)?, h_target.dim(0)?);
    let truth: Vec<u32> = std::iter::repeat_n(0, n_source).chain(std::iter::repeat_n(1, n_target)).collect();
    let truth = Tensor::new(truth.as_slice(), h.device())?;
    let domain_loss = candle_nn::loss::cross_entropy(&d, &truth)?;
    let predicted = d.argmax(1)?;
    let domain_correct = predicted.eq(&truth)?.to_dtype(DType::F32)?.sum_all()?.to_scalar::<f32>()? as usize;
    let total = (&label + &domain_loss)?;
    Ok(DannLosses { label, domain: domain_loss, total, domain_correct })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn the_schedule_rises_from_zero_to_the_strength() {
        assert_eq!(grl_lambda(0.0, 1.0), 0.0);
        assert!((grl_lambda(1.0, 1.0) - 0.99991).abs() < 1e-4);
        assert!((grl_lambda(0.1, 0.5) - 0.5 * 0.46212).abs() < 1e-4);
    }

    #[test]
    fn the_reversal_is_the_identity_forward_and_negates_the_gradient() {
        let x = Var::new(&[1.0f32, -2.0, 3.0], &Device::Cpu).unwrap();
        let y = reverse_gradient(x.as_tensor(), 0.25).unwrap();
        assert_eq!(y.to_vec1::<f32>().unwrap(), [1.0, -2.0, 3.0]);
        let grads = (y * 2.0).unwrap().sum_all().unwrap().backward().unwrap();
        assert_eq!(grads.get(x.as_tensor()).unwrap().to_vec1::<f32>().unwrap(), [-0.5, -0.5, -0.5]);
    }
}
