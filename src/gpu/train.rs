//! The head's training step on the GPU, weights resident there: the same network, loss and
//! optimizer as the CPU trainer ([`crate::train::Trainer`], whose batches, shuffles and dropout
//! masks drive this one), built from general kernels that the backbone's backward pass can
//! reuse: products with transposed operands, softmax cross-entropy, ReLU and dropout masks,
//! column sums, AdamW.
//!
//! For a batch of R rows of resident features `x (N, D)`, hidden `H` (0: linear head), `C`
//! classes, with weights stored as Candle stores them (`(out, in)`):
//! forward   `x_b = x[rows]`, `h = relu(x_b W1^T + b1) * mask`, `z = h W2^T + b2`;
//! loss      `mean_r CE(z_r, y_r)`, `dz = (softmax(z) - onehot(y)) / R`;
//! backward  `dW2 = dz^T h`, `db2 = sum_r dz`, `dh = (dz W2) * mask * [h > 0]`,
//!           `dW1 = dh^T x_b`, `db1 = sum_r dh`; then AdamW on each parameter.
//! (`[h > 0]` is read after dropout: where the mask is 0 the gradient is 0 either way.)
//! A step is one compute pass and one submit with nothing read back; scoring a split reads
//! back each row's loss and prediction, once per epoch.

use std::collections::HashMap;
use std::sync::Arc;

use super::kernels::matmul::{Epilogue, MatmulShape};
use super::kernels::{adamw, elementwise, matmul, softmax_xent};
use super::program::{KernelCall, Kernels, Recorded};
use super::GpuContext;
use crate::error::{GraftError, Result};
use crate::model::MlpHeadSpec;

/// A trainable tensor with its gradient and AdamW moments.
struct Param {
    name: String,
    len: usize,
    value: wgpu::Buffer,
    grad: wgpu::Buffer,
    m: wgpu::Buffer,
    v: wgpu::Buffer,
}

/// One recorded pass over `rows` rows: a training step, or scoring.
struct Pass {
    indices: wgpu::Buffer,
    labels: wgpu::Buffer,
    mask: wgpu::Buffer,
    per_row: wgpu::Buffer,
    staging: wgpu::Buffer,
    recorded: Recorded,
    /// Index of the first AdamW dispatch (one per parameter, in order).
    first_adamw: usize,
    _scratch: Vec<wgpu::Buffer>,
}

/// See the module header.
pub struct GpuHead {
    kernels: Kernels,
    spec: MlpHeadSpec,
    features: wgpu::Buffer,
    labels: Vec<f32>,
    params: Vec<Param>,
    passes: HashMap<(usize, bool), Arc<Pass>>,
    steps: u32,
    learning_rate: f64,
    weight_decay: f64,
}

/// `(M, N, K)` of a product and which operand is stored transposed.
fn product(m: usize, n: usize, k: usize, trans_a: bool, trans_b: bool) -> MatmulShape {
    MatmulShape { m, n, k, trans_a, trans_b }
}

/// Names of the head's tensors in order: the hidden layer's, then the output layer's.
fn param_names(spec: &MlpHeadSpec) -> Vec<&'static str> {
    let output = ["output.weight", "output.bias"];
    if spec.hidden == 0 {
        output.to_vec()
    } else {
        [["hidden.weight", "hidden.bias"], output].concat()
    }
}

impl GpuHead {
    /// Uploads the features `(N, D)` row-major and the head's initial tensors (by name).
    pub async fn new(
        context: GpuContext,
        spec: MlpHeadSpec,
        initial: &HashMap<String, Vec<f32>>,
        features: &[f32],
        labels: &[usize],
        learning_rate: f64,
        weight_decay: f64,
    ) -> Result<Self> {
        let mut params = Vec::new();
        for name in param_names(&spec) {
            let values =
                initial.get(name).ok_or_else(|| GraftError::Training(format!("head tensor {name} is missing")))?;
            params.push((name, values));
        }
        let (features, params) = context
            .checked("uploading the training data", || {
                let params = params
                    .iter()
                    .map(|(name, values)| Param {
                        name: name.to_string(),
                        len: values.len(),
                        value: context.upload(name, values),
                        grad: context.storage("grad", (values.len() * 4) as u64),
                        m: context.upload("adam m", &vec![0.0; values.len()]),
                        v: context.upload("adam v", &vec![0.0; values.len()]),
                    })
                    .collect::<Vec<_>>();
                (context.upload("features", features), params)
            })
            .await?;
        let labels = labels.iter().map(|&l| l as f32).collect();
        let kernels = Kernels::new(context);
        Ok(Self {
            kernels,
            spec,
            features,
            labels,
            params,
            passes: HashMap::new(),
            steps: 0,
            learning_rate,
            weight_decay,
        })
    }

    pub fn context(&self) -> &GpuContext {
        self.kernels.context()
    }

    /// One AdamW step on the rows `rows` of the features; `mask` is the dropout mask
    /// `(rows, hidden)` (0 or `1 / (1 - p)`), `None` without dropout.
    pub async fn train_batch(&mut self, rows: &[usize], mask: Option<&[f32]>) -> Result<()> {
        let pass = self.pass(rows.len(), true).await?;
        self.steps += 1;
        self.write_rows(&pass, rows, mask);
        for (index, param) in self.params.iter().enumerate() {
            let params = adamw::params(param.len, self.learning_rate, self.weight_decay, self.steps);
            pass.recorded.write_params(self.context().queue(), pass.first_adamw + index, &params);
        }
        self.kernels.run(&pass.recorded, &[]).await?;
        Ok(())
    }

    /// The mean cross-entropy over `rows` and each row's predicted class.
    pub async fn score(&mut self, rows: &[usize]) -> Result<(f32, Vec<usize>)> {
        if rows.is_empty() {
            return Ok((0.0, Vec::new()));
        }
        let pass = self.pass(rows.len(), false).await?;
        self.write_rows(&pass, rows, None);
        let per_row =
            self.kernels.run(&pass.recorded, &[(&pass.per_row, &pass.staging, 2 * rows.len())]).await?.remove(0);
        let loss = per_row.iter().step_by(2).map(|&l| l as f64).sum::<f64>() / rows.len() as f64;
        Ok((loss as f32, per_row.iter().skip(1).step_by(2).map(|&p| p as usize).collect()))
    }

    /// The current weights, by name (read back when an epoch improved on the best).
    pub async fn weights(&self) -> Result<HashMap<String, Vec<f32>>> {
        let staging: Vec<_> = self.params.iter().map(|p| self.context().staging((p.len * 4) as u64)).collect();
        self.context()
            .checked("reading the head back", || {
                let mut encoder = self.context().device().create_command_encoder(&Default::default());
                for (p, s) in self.params.iter().zip(&staging) {
                    encoder.copy_buffer_to_buffer(&p.value, 0, s, 0, (p.len * 4) as u64);
                }
                self.context().queue().submit([encoder.finish()]);
            })
            .await?;
        let mut weights = HashMap::new();
        for (p, s) in self.params.iter().zip(&staging) {
            weights.insert(p.name.clone(), self.context().read(s, p.len).await?);
        }
        Ok(weights)
    }

    /// Width of the output layer's input: the hidden units, or the features of a linear head.
    fn output_in(&self) -> usize {
        if self.spec.hidden > 0 {
            self.spec.hidden
        } else {
            self.spec.in_dim
        }
    }

    fn write_rows(&self, pass: &Pass, rows: &[usize], mask: Option<&[f32]>) {
        let queue = self.context().queue();
        let indices: Vec<f32> = rows.iter().map(|&r| r as f32).collect();
        let labels: Vec<f32> = rows.iter().map(|&r| self.labels[r]).collect();
        queue.write_buffer(&pass.indices, 0, bytemuck::cast_slice(&indices));
        queue.write_buffer(&pass.labels, 0, bytemuck::cast_slice(&labels));
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
    }

    // Natively wgpu's handles are Send + Sync and the Arc is shared; on wasm32 (one thread)
    // they are not, and the Arc only counts references.
    #[cfg_attr(target_arch = "wasm32", allow(clippy::arc_with_non_send_sync))]
    async fn pass(&mut self, rows: usize, train: bool) -> Result<Arc<Pass>> {
        if let Some(pass) = self.passes.get(&(rows, train)) {
            return Ok(Arc::clone(pass));
        }
        let pass = Arc::new(self.record(rows, train).await?);
        self.passes.insert((rows, train), Arc::clone(&pass));
        Ok(pass)
    }

    async fn record(&self, rows: usize, train: bool) -> Result<Pass> {
        let context = self.context();
        let MlpHeadSpec { in_dim, hidden, classes } = self.spec;
        let scratch = |len: usize| context.storage("head scratch", (len * 4) as u64);
        let (indices, labels, mask, per_row) =
            (scratch(rows), scratch(rows), scratch(rows * hidden), scratch(2 * rows));
        let x = scratch(rows * in_dim);
        let h = scratch(rows * hidden);
        let dh = scratch(rows * hidden);
        let logits = scratch(rows * classes);
        let dz = scratch(rows * classes);
        let max = context.limits().max_compute_workgroups_per_dimension;
        let mut calls = vec![elementwise::gather(rows, in_dim, [&self.features, &indices, &x], max)];
        let (w2, b2) = (&self.params[self.params.len() - 2], &self.params[self.params.len() - 1]);
        let with_bias = |relu| Epilogue { bias: true, relu };
        let head_input = if hidden > 0 {
            let (w1, b1) = (&self.params[0], &self.params[1]);
            calls.push(matmul::call(
                product(rows, hidden, in_dim, false, true),
                with_bias(true),
                [&x, &w1.value, &b1.value, &h],
            ));
            calls.push(elementwise::mask(rows * hidden, false, [&mask, &mask, &h], max));
            &h
        } else {
            &x
        };
        calls.push(matmul::call(
            product(rows, classes, self.output_in(), false, true),
            with_bias(false),
            [head_input, &w2.value, &b2.value, &logits],
        ));
        calls.push(softmax_xent::call(rows, classes, [&logits, &labels, &dz, &per_row], max));
        let first_adamw =
            if train { self.backward(&mut calls, rows, [&x, head_input, &dz, &dh, &mask], max) } else { calls.len() };
        let recorded = self.kernels.record("recording the head's training step", &calls).await?;
        let staging = context.staging((2 * rows * 4) as u64);
        Ok(Pass {
            indices,
            labels,
            mask,
            per_row,
            staging,
            recorded,
            first_adamw,
            _scratch: vec![x, h, dh, logits, dz],
        })
    }

    /// Appends the backward pass and the AdamW steps; returns the index of the first AdamW call.
    fn backward<'a>(
        &'a self,
        calls: &mut Vec<KernelCall<'a>>,
        rows: usize,
        [x, head_input, dz, dh, mask]: [&'a wgpu::Buffer; 5],
        max: u32,
    ) -> usize {
        let MlpHeadSpec { in_dim, hidden, classes } = self.spec;
        let n = self.params.len();
        let (w2, b2) = (&self.params[n - 2], &self.params[n - 1]);
        let plain = Epilogue::default();
        calls.push(matmul::call(
            product(classes, self.output_in(), rows, true, false),
            plain,
            [dz, head_input, dz, &w2.grad],
        ));
        calls.push(elementwise::column_sum(rows, classes, [dz, &b2.grad]));
        if hidden > 0 {
            let (w1, b1) = (&self.params[0], &self.params[1]);
            calls.push(matmul::call(product(rows, hidden, classes, false, false), plain, [dz, &w2.value, dz, dh]));
            calls.push(elementwise::mask(rows * hidden, true, [mask, head_input, dh], max));
            calls.push(matmul::call(product(hidden, in_dim, rows, true, false), plain, [dh, x, dh, &w1.grad]));
            calls.push(elementwise::column_sum(rows, hidden, [dh, &b1.grad]));
        }
        let first = calls.len();
        for p in &self.params {
            let params = adamw::params(p.len, self.learning_rate, self.weight_decay, 1);
            calls.push(adamw::call(params, [&p.grad, &p.value, &p.m, &p.v], max));
        }
        first
    }
}
