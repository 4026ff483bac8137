//! The head's training step on the GPU, weights resident there: the same network, loss and
//! optimizer as the CPU trainer ([`crate::train::Trainer`], whose batches, shuffles and dropout
//! masks drive this one), built from general kernels that the backbone's backward pass
//! reuses: products with transposed operands, softmax cross-entropy, ReLU and dropout masks,
//! column sums, AdamW. In fine-tuning the head's input is the pooled output of the unfrozen
//! blocks ([`super::suffix::GpuSuffix`]), whose gradients and AdamW steps join the same pass
//! once they train.
//!
//! For a batch of R rows of features `x (R, D)` (gathered from resident features, or made by
//! the unfrozen blocks from the boundary activations written before the pass), hidden `H`
//! (0: linear head), `C` classes, with weights stored as Candle stores them (`(out, in)`):
//! forward   `h = relu(x W1^T + b1) * mask`, `z = h W2^T + b2`;
//! loss      `mean_r CE(z_r, y_r)`, `dz = (softmax(z) - onehot(y)) / R`;
//! backward  `dW2 = dz^T h`, `db2 = sum_r dz`, `dh = (dz W2) * mask * [h > 0]`,
//!           `dW1 = dh^T x`, `db1 = sum_r dh`, and for trainable blocks `dx = dh W1` (`dz W2`
//!           for a linear head); then AdamW on each parameter, each group at its own rate.
//! (`[h > 0]` is read after dropout: where the mask is 0 the gradient is 0 either way.)
//!
//! Domain adaptation (DANN, [`crate::train::dann`]) appends R target rows to the batch: the
//! blocks (or the gather) and the hidden layer run on all 2R rows, `h_all` before dropout;
//! the domain classifier `d = relu(h_all Wd1^T + bd1) Wd2^T + bd2` learns domain 0 (source)
//! or 1 (target) by softmax cross-entropy over the 2R rows, and its gradient `dh_all` reaches
//! the hidden layer reversed: `dh_all = (-lambda dh_all + [dh; 0]) * [h_all > 0]`
//! (`reversal.wgsl`), from which `dW1`, `db1` and the blocks' `dx` follow over all 2R rows.
//! A step is one compute pass and one submit with nothing read back; scoring reads back each
//! row's loss and prediction.

use std::collections::HashMap;
use std::sync::Arc;

use super::kernels::matmul::{Epilogue, MatmulShape};
use super::kernels::{adamw, elementwise, matmul, softmax_xent};
use super::param::Param;
use super::program::{KernelCall, Kernels, Recorded};
use super::suffix::{Dims, GpuSuffix, SuffixScratch};
use super::GpuContext;
use crate::backbone::TrainableSuffix;
use crate::error::{GraftError, Result};
use crate::model::{names, MlpHeadSpec};
use crate::train::dann::DOMAIN_HIDDEN;

/// What the head learns on.
pub enum HeadInputs<'a> {
    /// Features `(N, D)`, row-major, kept on the GPU; each pass gathers its rows.
    Features(&'a [f32]),
    /// Unfrozen blocks taking `(h, w, C)` activations per image, written before each pass.
    Suffix { suffix: &'a TrainableSuffix, boundary: Dims },
}

enum Source {
    Resident(wgpu::Buffer),
    Suffix(GpuSuffix),
}

/// A recorded pass: `rows` rows, a training step or scoring, with the blocks learning or not,
/// and with as many target rows when adapting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct PassKey {
    rows: usize,
    train: bool,
    suffix_learns: bool,
    adapting: bool,
}

/// The target half of an adapting step: its rows (into the resident features, after every
/// source row; with blocks first, their activations follow the source rows' in the inputs),
/// and the reversal's coefficient.
#[derive(Debug, Clone, Copy)]
pub struct DomainBatch<'a> {
    pub target_rows: &'a [usize],
    pub lambda: f64,
}

/// An adapting pass's buffers for the domain classifier over its `2R` rows.
struct DomainScratch {
    /// `R` zeros then `R` ones, as f32.
    labels: wgpu::Buffer,
    ones: wgpu::Buffer,
    h: wgpu::Buffer,
    a: wgpu::Buffer,
    logits: wgpu::Buffer,
    d_logits: wgpu::Buffer,
    da: wgpu::Buffer,
    dh: wgpu::Buffer,
    per_row: wgpu::Buffer,
    staging: wgpu::Buffer,
}

impl DomainScratch {
    fn new(context: &GpuContext, rows: usize, hidden: usize) -> Self {
        let all = 2 * rows;
        let scratch = |len: usize| context.storage("domain scratch", (len * 4) as u64);
        let labels: Vec<f32> = (0..all).map(|r| if r < rows { 0.0 } else { 1.0 }).collect();
        Self {
            labels: context.upload("domain labels", &labels),
            ones: context.upload("ones", &vec![1.0; all * DOMAIN_HIDDEN]),
            h: scratch(all * hidden),
            a: scratch(all * DOMAIN_HIDDEN),
            logits: scratch(all * 2),
            d_logits: scratch(all * 2),
            da: scratch(all * DOMAIN_HIDDEN),
            dh: scratch(all * hidden),
            per_row: scratch(all * 2),
            staging: context.staging((all * 2 * 4) as u64),
        }
    }
}

/// One recorded pass over `rows` rows: a training step, or scoring.
struct Pass {
    indices: wgpu::Buffer,
    labels: wgpu::Buffer,
    mask: wgpu::Buffer,
    per_row: wgpu::Buffer,
    staging: wgpu::Buffer,
    recorded: Recorded,
    /// Index of the first AdamW dispatch (one per parameter: the head's, the blocks', the
    /// domain classifier's).
    first_adamw: usize,
    /// Index of the reversal's dispatch, whose `-lambda` each adapting step writes.
    reversal: Option<usize>,
    suffix: Option<SuffixScratch>,
    domain: Option<DomainScratch>,
    _scratch: Vec<wgpu::Buffer>,
}

/// See the module header.
pub struct GpuHead {
    kernels: Kernels,
    spec: MlpHeadSpec,
    source: Source,
    labels: Vec<f32>,
    params: Vec<Param>,
    passes: HashMap<PassKey, Arc<Pass>>,
    steps: u32,
    /// AdamW steps of the blocks since they joined.
    suffix_steps: u32,
    suffix_learns: bool,
    /// The head's rate and the blocks'.
    learning_rates: [f64; 2],
    weight_decay: f64,
    /// The domain classifier of an adapting run ([`Self::adapt`]), its rate and steps.
    domain: Vec<Param>,
    domain_rate: f64,
    domain_steps: u32,
}

const PLAIN: Epilogue = Epilogue { bias: false, relu: false, relu6: false };
const BIAS: Epilogue = Epilogue { bias: true, relu: false, relu6: false };
const BIAS_RELU: Epilogue = Epilogue { bias: true, relu: true, relu6: false };

/// `(M, N, K)` of a product and which operand is stored transposed.
fn product(m: usize, n: usize, k: usize, trans_a: bool, trans_b: bool) -> MatmulShape {
    MatmulShape { m, n, k, trans_a, trans_b }
}

impl GpuHead {
    /// Uploads the inputs and the head's initial tensors (by name).
    pub async fn new(
        context: GpuContext,
        spec: MlpHeadSpec,
        initial: &HashMap<String, Vec<f32>>,
        inputs: HeadInputs<'_>,
        labels: &[usize],
        learning_rate: f64,
        weight_decay: f64,
    ) -> Result<Self> {
        let mut params = Vec::new();
        for &name in names::head_tensors(spec.hidden > 0) {
            let values =
                initial.get(name).ok_or_else(|| GraftError::Training(format!("head tensor {name} is missing")))?;
            params.push((name, values));
        }
        let (source, params) = context
            .checked("uploading the training data", || -> Result<_> {
                let params = params.iter().map(|(name, values)| Param::new(&context, name, values)).collect();
                let source = match inputs {
                    HeadInputs::Features(features) => Source::Resident(context.upload("features", features)),
                    HeadInputs::Suffix { suffix, boundary } => {
                        Source::Suffix(GpuSuffix::new(&context, suffix, boundary)?)
                    }
                };
                Ok((source, params))
            })
            .await??;
        if let Source::Suffix(suffix) = &source {
            if suffix.feature_dim() != spec.in_dim {
                return Err(GraftError::Training(format!(
                    "the blocks make {} features for a head of {}",
                    suffix.feature_dim(),
                    spec.in_dim
                )));
            }
        }
        Ok(Self {
            kernels: Kernels::new(context),
            spec,
            source,
            labels: labels.iter().map(|&l| l as f32).collect(),
            params,
            passes: HashMap::new(),
            steps: 0,
            suffix_steps: 0,
            suffix_learns: false,
            learning_rates: [learning_rate, learning_rate],
            weight_decay,
            domain: Vec::new(),
            domain_rate: learning_rate,
            domain_steps: 0,
        })
    }

    /// Adds the domain classifier of domain adaptation from its initial tensors (by the names
    /// of [`names::TWO_LAYERS`]), trained by AdamW at `learning_rate`; training steps then take
    /// target rows too ([`DomainBatch`]). A linear head has no hidden layer to adapt here.
    pub async fn adapt(&mut self, initial: &HashMap<String, Vec<f32>>, learning_rate: f64) -> Result<()> {
        if self.spec.hidden == 0 {
            return Err(GraftError::GpuUnavailable("a linear head has no WebGPU kernels for domain adaptation".into()));
        }
        let mut tensors = Vec::new();
        for name in names::TWO_LAYERS {
            let values = initial
                .get(name)
                .ok_or_else(|| GraftError::Training(format!("domain classifier tensor {name} is missing")))?;
            tensors.push((format!("{}.{name}", names::DOMAIN), values));
        }
        let context = self.context().clone();
        self.domain = context
            .checked("uploading the domain classifier", || {
                tensors.iter().map(|(name, values)| Param::new(&context, name, values)).collect()
            })
            .await?;
        self.domain_rate = learning_rate;
        Ok(())
    }

    pub fn context(&self) -> &GpuContext {
        self.kernels.context()
    }

    /// Whether unfrozen blocks come before the head.
    pub fn has_suffix(&self) -> bool {
        self.suffix().is_some()
    }

    /// The unfrozen blocks, if they come first.
    fn suffix(&self) -> Option<&GpuSuffix> {
        match &self.source {
            Source::Suffix(suffix) => Some(suffix),
            Source::Resident(_) => None,
        }
    }

    /// The learning rates from the next step on: the head's, then the blocks'.
    pub fn set_learning_rates(&mut self, rates: &[f64]) {
        for (slot, rate) in self.learning_rates.iter_mut().zip(rates) {
            *slot = *rate;
        }
    }

    /// Whether the unfrozen blocks learn from the next step on; when they join, their AdamW
    /// starts afresh (zero moments, step 1), as the CPU trainer's new parameter group does.
    pub fn set_suffix_learns(&mut self, learns: bool) -> Result<()> {
        let Source::Suffix(suffix) = &self.source else {
            return Err(GraftError::Training("this run has no unfrozen blocks".into()));
        };
        if learns && !self.suffix_learns {
            let queue = self.kernels.context().queue();
            for p in suffix.params() {
                let zeros = vec![0f32; p.len];
                queue.write_buffer(&p.m, 0, bytemuck::cast_slice(&zeros));
                queue.write_buffer(&p.v, 0, bytemuck::cast_slice(&zeros));
            }
            self.suffix_steps = 0;
        }
        self.suffix_learns = learns;
        Ok(())
    }

    /// One AdamW step on the rows `rows`; `inputs` holds their boundary activations when
    /// blocks come first (`rows x` [`GpuSuffix::input_len`], then the target rows' when
    /// adapting); `mask` is the dropout mask `(rows, hidden)` (0 or `1 / (1 - p)`), `None`
    /// without dropout. With `domain` (after [`Self::adapt`]) the step adapts, and returns how
    /// many of the `2 rows` domains its classifier got right.
    pub async fn train_batch(
        &mut self,
        rows: &[usize],
        inputs: Option<&[f32]>,
        mask: Option<&[f32]>,
        domain: Option<DomainBatch<'_>>,
    ) -> Result<Option<usize>> {
        if domain.is_some_and(|d| d.target_rows.len() != rows.len()) || (domain.is_some() && self.domain.is_empty()) {
            return Err(GraftError::Training(
                "an adapting step needs the domain classifier and one target row per row".into(),
            ));
        }
        let adapting = domain.is_some();
        let key = PassKey { rows: rows.len(), train: true, suffix_learns: self.suffix_learns, adapting };
        let pass = self.pass(key).await?;
        let target_rows = domain.map_or(&[][..], |d| d.target_rows);
        self.write_rows(&pass, (rows, target_rows), inputs, mask)?;
        self.steps += 1;
        let weight_decay = self.weight_decay;
        let [head_rate, suffix_rate] = self.learning_rates;
        let mut steps: Vec<adamw::AdamwParams> =
            self.params.iter().map(|p| adamw::params(p.len, head_rate, weight_decay, self.steps)).collect();
        if let (Source::Suffix(suffix), true) = (&self.source, self.suffix_learns) {
            self.suffix_steps += 1;
            steps.extend(suffix.params().map(|p| adamw::params(p.len, suffix_rate, weight_decay, self.suffix_steps)));
        }
        if adapting {
            self.domain_steps += 1;
            let (rate, step) = (self.domain_rate, self.domain_steps);
            steps.extend(self.domain.iter().map(|p| adamw::params(p.len, rate, weight_decay, step)));
        }
        let queue = self.context().queue();
        for (index, params) in steps.iter().enumerate() {
            pass.recorded.write_params(queue, pass.first_adamw + index, *params);
        }
        let (Some(batch), Some(index), Some(scratch)) = (domain, pass.reversal, &pass.domain) else {
            self.kernels.run(&pass.recorded, &[]).await?;
            return Ok(None);
        };
        let lens = (2 * rows.len() * self.spec.hidden, rows.len() * self.spec.hidden);
        pass.recorded.write_params(queue, index, elementwise::reversal_params(lens, -batch.lambda as f32));
        let per_row = self.kernels.run(&pass.recorded, &[(&scratch.per_row, &scratch.staging, 4 * rows.len())]).await?;
        let predicted = per_row[0].iter().skip(1).step_by(2);
        let hits = predicted.enumerate().filter(|&(r, &p)| (p as usize) == usize::from(r >= rows.len())).count();
        Ok(Some(hits))
    }

    /// The mean cross-entropy over `rows` and each row's predicted class; `inputs` as for
    /// [`Self::train_batch`].
    pub async fn score(&mut self, rows: &[usize], inputs: Option<&[f32]>) -> Result<(f32, Vec<usize>)> {
        if rows.is_empty() {
            return Ok((0.0, Vec::new()));
        }
        let pass = self.pass(PassKey { rows: rows.len(), train: false, suffix_learns: false, adapting: false }).await?;
        self.write_rows(&pass, (rows, &[]), inputs, None)?;
        let per_row =
            self.kernels.run(&pass.recorded, &[(&pass.per_row, &pass.staging, 2 * rows.len())]).await?.remove(0);
        let loss = per_row.iter().step_by(2).map(|&l| l as f64).sum::<f64>() / rows.len() as f64;
        Ok((loss as f32, per_row.iter().skip(1).step_by(2).map(|&p| p as usize).collect()))
    }

    /// The current weights by name: the head's, and the blocks' with their batch-norm
    /// statistics (read back when an epoch improved on the best).
    pub async fn weights(&self) -> Result<HashMap<String, Vec<f32>>> {
        let params: Vec<&Param> = self.params.iter().chain(self.suffix_params()).collect();
        let staging: Vec<_> = params.iter().map(|p| self.context().staging((p.len * 4) as u64)).collect();
        self.context()
            .checked("reading the weights back", || {
                let mut encoder = self.context().device().create_command_encoder(&Default::default());
                for (p, s) in params.iter().zip(&staging) {
                    encoder.copy_buffer_to_buffer(&p.value, 0, s, 0, (p.len * 4) as u64);
                }
                self.context().queue().submit([encoder.finish()]);
            })
            .await?;
        let mut weights: HashMap<String, Vec<f32>> =
            self.suffix().map(|s| s.stats().iter().cloned().collect()).unwrap_or_default();
        for (p, s) in params.iter().zip(&staging) {
            weights.insert(p.name.clone(), self.context().read(s, p.len).await?);
        }
        Ok(weights)
    }

    /// Sets the head's and the blocks' parameters named in `weights` (as [`Self::weights`]
    /// gave them; the blocks' batch-norm statistics are constants of the pass and stay).
    pub fn set_weights(&mut self, weights: &HashMap<String, Vec<f32>>) -> Result<()> {
        let queue = self.context().queue();
        for p in self.params.iter().chain(self.suffix_params()) {
            let Some(values) = weights.get(&p.name) else { continue };
            if values.len() != p.len {
                return Err(GraftError::Training(format!("{} has {} values, not {}", p.name, values.len(), p.len)));
            }
            queue.write_buffer(&p.value, 0, bytemuck::cast_slice(values));
        }
        Ok(())
    }

    /// The unfrozen blocks' parameters, if blocks come first.
    fn suffix_params(&self) -> impl Iterator<Item = &Param> {
        self.suffix().into_iter().flat_map(|s| s.params())
    }

    /// Width of the output layer's input: the hidden units, or the features of a linear head.
    fn output_in(&self) -> usize {
        if self.spec.hidden > 0 {
            self.spec.hidden
        } else {
            self.spec.in_dim
        }
    }

    /// Writes a pass's row indices (the source rows, then any target rows), labels, inputs and
    /// dropout mask.
    fn write_rows(
        &self,
        pass: &Pass,
        (rows, target_rows): (&[usize], &[usize]),
        inputs: Option<&[f32]>,
        mask: Option<&[f32]>,
    ) -> Result<()> {
        let queue = self.context().queue();
        let indices: Vec<f32> = rows.iter().chain(target_rows).map(|&r| r as f32).collect();
        let labels: Vec<f32> = rows.iter().map(|&r| self.labels[r]).collect();
        queue.write_buffer(&pass.indices, 0, bytemuck::cast_slice(&indices));
        queue.write_buffer(&pass.labels, 0, bytemuck::cast_slice(&labels));
        if let (Source::Suffix(suffix), Some(scratch)) = (&self.source, &pass.suffix) {
            let expected = indices.len() * suffix.input_len();
            match inputs {
                Some(values) if values.len() == expected => {
                    queue.write_buffer(&scratch.input, 0, bytemuck::cast_slice(values))
                }
                _ => {
                    let got = inputs.map_or(0, |v| v.len());
                    return Err(GraftError::Training(format!("{got} input values for {expected}")));
                }
            }
        }
        if self.spec.hidden > 0 {
            let ones;
            let mask = match mask {
                Some(mask) => mask,
                None => {
                    ones = vec![1f32; rows.len() * self.spec.hidden];
                    &ones
                }
            };
            queue.write_buffer(&pass.mask, 0, bytemuck::cast_slice(mask));
        }
        Ok(())
    }

    // Natively wgpu's handles are Send + Sync and the Arc is shared; on wasm32 (one thread)
    // they are not, and the Arc only counts references.
    #[cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]
    async fn pass(&mut self, key: PassKey) -> Result<Arc<Pass>> {
        if let Some(pass) = self.passes.get(&key) {
            return Ok(Arc::clone(pass));
        }
        let pass = Arc::new(self.record(key).await?);
        self.passes.insert(key, Arc::clone(&pass));
        Ok(pass)
    }

    async fn record(&self, key: PassKey) -> Result<Pass> {
        let PassKey { rows, train, suffix_learns, adapting } = key;
        let all = if adapting { 2 * rows } else { rows };
        let context = self.context();
        let MlpHeadSpec { in_dim, hidden, classes } = self.spec;
        let scratch = |len: usize| context.storage("head scratch", (len * 4) as u64);
        let (indices, labels, mask, per_row) = (scratch(all), scratch(rows), scratch(rows * hidden), scratch(2 * rows));
        let gathered = scratch(if matches!(self.source, Source::Resident(_)) { all * in_dim } else { 1 });
        let h = scratch(rows * hidden);
        let dh = scratch(rows * hidden);
        let logits = scratch(rows * classes);
        let dz = scratch(rows * classes);
        let domain = adapting.then(|| DomainScratch::new(context, rows, hidden));
        let max = context.limits().max_compute_workgroups_per_dimension;
        let suffix = match &self.source {
            Source::Suffix(suffix) => Some((suffix, suffix.scratch(context, all, train && suffix_learns))),
            Source::Resident(_) => None,
        };
        let mut calls = Vec::new();
        let x = match (&self.source, &suffix) {
            (_, Some((blocks, s))) => {
                blocks.forward(s, all, &mut calls, max);
                &s.features
            }
            (Source::Resident(features), None) => {
                calls.push(elementwise::gather(all, in_dim, [features, &indices, &gathered], max));
                &gathered
            }
            (Source::Suffix(_), None) => unreachable!("a suffix source always has scratch"),
        };
        // The label path reads the first `rows` rows of `x`: the source rows.
        let (w2, b2) = (&self.params[self.params.len() - 2], &self.params[self.params.len() - 1]);
        let head_input = if hidden > 0 {
            let (w1, b1) = (&self.params[0], &self.params[1]);
            calls.push(matmul::call(
                product(rows, hidden, in_dim, false, true),
                BIAS_RELU,
                [x, &w1.value, &b1.value, &h],
            ));
            calls.push(elementwise::mask(rows * hidden, false, [&mask, &mask, &h], max));
            &h
        } else {
            x
        };
        calls.push(matmul::call(
            product(rows, classes, self.output_in(), false, true),
            BIAS,
            [head_input, &w2.value, &b2.value, &logits],
        ));
        calls.push(softmax_xent::call(rows, classes, [&logits, &labels, &dz, &per_row], max));
        if let Some(domain) = &domain {
            self.domain_forward(&mut calls, domain, x, all, max);
        }
        let first_adamw = if train {
            let learning = suffix.as_ref().filter(|_| suffix_learns);
            let d_features = learning.map(|(_, s)| &s.d_features);
            let buffers = [x, head_input, &dz, &dh, &mask];
            self.backward(&mut calls, rows, buffers, d_features, domain.as_ref(), max);
            if let Some((blocks, s)) = learning {
                blocks.backward(s, all, &mut calls, max);
            }
            let first = calls.len();
            let suffix_params = learning.into_iter().flat_map(|(blocks, _)| blocks.params());
            let domain_params = self.domain.iter().filter(|_| adapting);
            for p in self.params.iter().chain(suffix_params).chain(domain_params) {
                let params = adamw::params(p.len, 0.0, 0.0, 1);
                calls.push(adamw::call(params, [&p.grad, &p.value, &p.m, &p.v], max));
            }
            first
        } else {
            calls.len()
        };
        let reversal = calls.iter().position(|call| std::ptr::eq(call.kernel, &elementwise::REVERSAL));
        let recorded = self.kernels.record("recording the training step", &calls).await?;
        drop(calls);
        let staging = context.staging((2 * rows * 4) as u64);
        Ok(Pass {
            indices,
            labels,
            mask,
            per_row,
            staging,
            recorded,
            first_adamw,
            reversal,
            suffix: suffix.map(|(_, s)| s),
            domain,
            _scratch: vec![gathered, h, dh, logits, dz],
        })
    }

    /// Appends the head's backward pass, and the gradient of its input into `d_features`
    /// when the blocks before it learn; with `domain`, the hidden layer's gradient is the
    /// domain classifier's reversed one plus the label path's, over the source and target rows.
    fn backward<'a>(
        &'a self,
        calls: &mut Vec<KernelCall<'a>>,
        rows: usize,
        [x, head_input, dz, dh, mask]: [&'a wgpu::Buffer; 5],
        d_features: Option<&'a wgpu::Buffer>,
        domain: Option<&'a DomainScratch>,
        max: u32,
    ) {
        let MlpHeadSpec { in_dim, hidden, classes } = self.spec;
        let n = self.params.len();
        let (w2, b2) = (&self.params[n - 2], &self.params[n - 1]);
        calls.push(matmul::call(
            product(classes, self.output_in(), rows, true, false),
            PLAIN,
            [dz, head_input, dz, &w2.grad],
        ));
        calls.push(elementwise::column_sum(rows, classes, [dz, &b2.grad]));
        if hidden > 0 {
            let (w1, b1) = (&self.params[0], &self.params[1]);
            calls.push(matmul::call(product(rows, hidden, classes, false, false), PLAIN, [dz, &w2.value, dz, dh]));
            calls.push(elementwise::mask(rows * hidden, true, [mask, head_input, dh], max));
            let (dh, rows) = match domain {
                Some(domain) => {
                    self.domain_backward(calls, domain, (dh, rows), max);
                    (&domain.dh, 2 * rows)
                }
                None => (dh, rows),
            };
            calls.push(matmul::call(product(hidden, in_dim, rows, true, false), PLAIN, [dh, x, dh, &w1.grad]));
            calls.push(elementwise::column_sum(rows, hidden, [dh, &b1.grad]));
            if let Some(dx) = d_features {
                calls.push(matmul::call(product(rows, in_dim, hidden, false, false), PLAIN, [dh, &w1.value, dh, dx]));
            }
        } else if let Some(dx) = d_features {
            calls.push(matmul::call(product(rows, in_dim, classes, false, false), PLAIN, [dz, &w2.value, dz, dx]));
        }
    }

    /// The hidden layer before dropout over all `all` rows of `x`, then the domain
    /// classifier's logits and loss.
    fn domain_forward<'a>(
        &'a self,
        calls: &mut Vec<KernelCall<'a>>,
        s: &'a DomainScratch,
        x: &'a wgpu::Buffer,
        all: usize,
        max: u32,
    ) {
        let MlpHeadSpec { in_dim, hidden, .. } = self.spec;
        let (w1, b1) = (&self.params[0], &self.params[1]);
        let [wd1, bd1, wd2, bd2] = [0, 1, 2, 3].map(|i| &self.domain[i]);
        calls.push(matmul::call(product(all, hidden, in_dim, false, true), BIAS_RELU, [x, &w1.value, &b1.value, &s.h]));
        calls.push(matmul::call(
            product(all, DOMAIN_HIDDEN, hidden, false, true),
            BIAS_RELU,
            [&s.h, &wd1.value, &bd1.value, &s.a],
        ));
        calls.push(matmul::call(
            product(all, 2, DOMAIN_HIDDEN, false, true),
            BIAS,
            [&s.a, &wd2.value, &bd2.value, &s.logits],
        ));
        calls.push(softmax_xent::call(all, 2, [&s.logits, &s.labels, &s.d_logits, &s.per_row], max));
    }

    /// The domain classifier's gradients, and its gradient of the hidden layer reversed and
    /// added to the label path's `dh` (`rows` source rows) in `s.dh`.
    fn domain_backward<'a>(
        &'a self,
        calls: &mut Vec<KernelCall<'a>>,
        s: &'a DomainScratch,
        (dh, rows): (&'a wgpu::Buffer, usize),
        max: u32,
    ) {
        let (all, hidden) = (2 * rows, self.spec.hidden);
        let [wd1, bd1, wd2, bd2] = [0, 1, 2, 3].map(|i| &self.domain[i]);
        let dd = &s.d_logits;
        calls.push(matmul::call(product(2, DOMAIN_HIDDEN, all, true, false), PLAIN, [dd, &s.a, dd, &wd2.grad]));
        calls.push(elementwise::column_sum(all, 2, [dd, &bd2.grad]));
        calls.push(matmul::call(product(all, DOMAIN_HIDDEN, 2, false, false), PLAIN, [dd, &wd2.value, dd, &s.da]));
        calls.push(elementwise::mask(all * DOMAIN_HIDDEN, true, [&s.ones, &s.a, &s.da], max));
        calls.push(matmul::call(
            product(DOMAIN_HIDDEN, hidden, all, true, false),
            PLAIN,
            [&s.da, &s.h, &s.da, &wd1.grad],
        ));
        calls.push(elementwise::column_sum(all, DOMAIN_HIDDEN, [&s.da, &bd1.grad]));
        calls.push(matmul::call(
            product(all, hidden, DOMAIN_HIDDEN, false, false),
            PLAIN,
            [&s.da, &wd1.value, &s.da, &s.dh],
        ));
        // The scale (-lambda) is written before each step.
        calls.push(elementwise::reversal((all * hidden, rows * hidden), 0.0, [dh, &s.h, &s.dh], max));
    }
}
