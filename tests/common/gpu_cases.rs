//! The GPU test cases, shared by the native tests (`tests/gpu.rs`, on Vulkan: Mesa lavapipe
//! in CI) and the browser tests (`tests/wasm_gpu.rs`, WebGPU on SwiftShader in headless
//! Chromium, in a dedicated worker as the app runs the engine): every kernel against its CPU
//! twin over shapes that do not divide the tiles, the backbone against the CPU executor, head
//! training against the CPU trainer, and each fallback path. Each case takes an open context.

#![allow(dead_code)]

/// Calls `$each!(group: case, case, ...)` for each group of the shared cases: the one list the
/// native and the browser test files both run. The browser runs each group in a runner of its
/// own (`cargo xtask test wasm`), so that no run nears the runner's time limit on SwiftShader.
macro_rules! every_gpu_case {
    ($each:ident) => {
        $each!(kernels:
            pointwise_matches_its_cpu_twin,
            depthwise_matches_its_cpu_twin,
            depthwise_gradients_match_their_cpu_twin,
            stem_convolution_matches_im2col_and_product,
            mean_matches_pooled,
            matmul_matches_a_triple_loop_with_every_transpose,
            gradient_reversal_matches_its_cpu_twin,
            elementwise_training_kernels_match_their_twins,
            softmax_xent_matches_candles_cross_entropy_and_its_gradient,
            adamw_matches_candles_adamw_over_three_steps,
            bn_fold_and_unfold_match_candles_fold_and_its_gradient,
        );
        $each!(executor:
            backbone_features_and_boundary_activations_match_the_cpu_executor,
            a_batch_over_the_buffer_limit_is_cut_into_chunks,
            a_lost_device_hands_the_work_in_flight_to_the_cpu,
            a_plan_without_a_kernel_stays_on_the_cpu_and_says_why,
            a_shader_that_does_not_compile_is_a_typed_error,
            a_device_the_adapter_refuses_is_a_typed_error,
            explicit_cpu_and_auto_choices_are_honoured,
        );
        $each!(head_training:
            head_training_on_the_gpu_matches_the_cpu_trainer,
            augmented_head_training_on_the_gpu_matches_the_cpu_trainer,
            adapting_head_training_on_the_gpu_matches_the_cpu_trainer,
            a_device_lost_mid_training_continues_on_the_cpu_from_the_best_weights,
            the_candle_and_gpu_steps_agree_on_every_head_case,
        );
        // The slowest cases on SwiftShader (up to 252 s each on 2 busy cores): a runner for
        // each backbone's, and the MobileNetV2 blocks' step-level case beside its own (+10 s).
        $each!(fine_tuning_mobilenet:
            fine_tuning_on_the_gpu_matches_the_cpu_trainer,
            the_candle_and_gpu_steps_agree_on_fine_tuning_blocks,
        );
        $each!(fine_tuning_efficientnet:
            efficientnet_lite0_fine_tuning_on_the_gpu_matches_the_cpu_trainer,
        );
        $each!(fine_tuning_adapting:
            adapting_fine_tuning_on_the_gpu_matches_the_cpu_trainer,
        );
    };
}

use std::sync::Arc;

use candle_core::{Device, Tensor};
use graft::backbone::Backbone;
use graft::exec::plan::{FoldedBlock, Unit};
use graft::exec::{Backend, BackendKind, CpuExecutor, Executor, FeatureMap, FoldedPlan};
use graft::gpu::kernels::backward::LinearParams;
use graft::gpu::kernels::matmul::{matmul_reference, Epilogue, MatmulShape};
use graft::gpu::kernels::{adamw, backward, conv3x3, depthwise, elementwise, matmul, mean, pointwise, softmax_xent};
use graft::gpu::program::{Kernel, KernelCall, Kernels, Params, ParamsLayout};
use graft::gpu::{BackendChoice, GpuContext, GpuExecutor};
use graft::kernels::backward::depthwise_backward_reference;
use graft::kernels::depthwise::{depthwise_reference, DepthwiseShape};
use graft::kernels::im2col::im2col3x3;
use graft::kernels::pointwise::{pointwise_reference, PointwiseShape};
use graft::kernels::Window;
use graft::train::step::{Batch, Rates, Scored, TargetBatch, TrainDevice, TrainStep};
use graft::train::{
    Adapt, BatchNormMode, CandleStep, FallbackStep, GpuStep, StepSpec, TrainConfig, TrainData, Trainer,
};

use super::random::{random_backbone, random_backbone_of};

/// A context on any adapter (software ones included), or the reason there is none: a panic
/// where `GRAFT_REQUIRE_GPU` was set when the tests were built or run (CI), else printed.
pub async fn gpu() -> Option<GpuContext> {
    match GpuContext::request(true).await {
        Ok(context) => Some(context),
        Err(e) if option_env!("GRAFT_REQUIRE_GPU").is_some() || std::env::var_os("GRAFT_REQUIRE_GPU").is_some() => {
            panic!("GRAFT_REQUIRE_GPU is set, but {e}")
        }
        Err(e) => {
            println!("SKIPPED (no GPU adapter here): {e}");
            None
        }
    }
}

pub fn values(n: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % 2001) as f32 / 1000.0 - 1.0
        })
        .collect()
}

/// `max |a - b| / max |b|`: the error relative to the output's scale.
pub fn relative_error(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

/// Uploads `inputs`, records the call `make` builds on them and an output of `out_len`, runs
/// it and reads the output back.
pub async fn run_kernel(
    kernels: &Kernels,
    inputs: &[&[f32]],
    out_len: usize,
    make: impl for<'a> FnOnce(&'a [wgpu::Buffer], &'a wgpu::Buffer) -> KernelCall<'a>,
) -> Vec<f32> {
    let context = kernels.context();
    let buffers: Vec<_> = inputs.iter().map(|v| context.upload("test input", v)).collect();
    let output = context.storage("test output", (out_len * 4) as u64);
    let staging = context.staging((out_len * 4) as u64);
    let recorded = kernels.record("test", &[make(&buffers, &output)]).await.unwrap();
    kernels.run(&recorded, &[(&output, &staging, out_len)]).await.unwrap().remove(0)
}

/// Uploads `buffers` (inputs and outputs alike), records the calls `make` builds on them, runs
/// them and reads back the buffers at the indices `read`: for in-place kernels, several
/// outputs, and a sequence of steps on the same buffers.
pub async fn run_on(
    kernels: &Kernels,
    buffers: &[&[f32]],
    read: &[usize],
    make: impl for<'a> FnOnce(&'a [wgpu::Buffer]) -> Vec<KernelCall<'a>>,
) -> Vec<Vec<f32>> {
    let context = kernels.context();
    let uploaded: Vec<_> = buffers.iter().map(|v| context.upload("test buffer", v)).collect();
    let staging: Vec<_> = read.iter().map(|&i| context.staging((buffers[i].len() * 4) as u64)).collect();
    let recorded = kernels.record("test", &make(&uploaded)).await.unwrap();
    let readback: Vec<_> = read.iter().zip(&staging).map(|(&i, s)| (&uploaded[i], s, buffers[i].len())).collect();
    kernels.run(&recorded, &readback).await.unwrap()
}

pub fn random_plan() -> Arc<FoldedPlan> {
    Arc::new(FoldedPlan::from_backbone(&random_backbone()).unwrap())
}

pub fn input_batch(batch: usize, size: usize) -> Tensor {
    Tensor::randn(0f32, 1.0, (batch, 3, size, size), &Device::Cpu).unwrap()
}

/// Three Gaussian blobs in 16 dimensions, from a fixed seed.
pub fn blobs(per_class: usize) -> (Tensor, Vec<usize>) {
    let mut rng = graft::train::rng::SplitMix64::new(7);
    let (mut data, mut labels) = (Vec::new(), Vec::new());
    for class in 0..3 {
        for _ in 0..per_class {
            data.extend((0..16).map(|d| if d % 3 == class { 1.5 } else { 0.0 } + rng.next_f32() - 0.5));
            labels.push(class);
        }
    }
    (Tensor::from_vec(data, (labels.len(), 16), &Device::Cpu).unwrap(), labels)
}

pub fn blob_trainer(config: TrainConfig) -> Trainer {
    let (inputs, labels) = blobs(23);
    Trainer::new(TrainData::new(inputs, labels, abc()), config).unwrap()
}

pub fn close(a: f32, b: f32) -> bool {
    (a - b).abs() <= 1e-4 * b.abs().max(1e-3)
}

pub async fn pointwise_matches_its_cpu_twin(context: GpuContext) {
    let kernels = Kernels::new(context);
    for (pixels, in_channels, out_channels) in [(1, 4, 4), (37, 20, 36), (100, 64, 96), (33, 160, 8)] {
        let shape = PointwiseShape { pixels, in_channels, out_channels };
        let (input, weight) = (values(pixels * in_channels, 1), values(in_channels * out_channels, 2));
        let (bias, residual) = (values(out_channels, 3), values(pixels * out_channels, 4));
        for (with_residual, relu6) in [(false, false), (true, false), (false, true)] {
            let twin =
                pointwise_reference(shape, &input, &weight, &bias, with_residual.then_some(&residual[..]), relu6);
            let got = run_kernel(&kernels, &[&input, &weight, &bias, &residual], twin.len(), |b, out| {
                let residual = with_residual.then_some(&b[3]);
                let buffers = pointwise::PointwiseBuffers {
                    input: &b[0],
                    weight: &b[1],
                    bias: &b[2],
                    residual,
                    unused: &b[3],
                    output: out,
                };
                pointwise::call(shape, relu6, buffers)
            })
            .await;
            let error = relative_error(&got, &twin);
            assert!(error < 1e-5, "{shape:?} residual {with_residual} relu6 {relu6}: error {error}");
        }
    }
}

/// DANN's reversal where the two gradients meet, in place, over lengths that do not divide
/// the workgroup: half the entries get the label gradient, the ReLU zeroes about half.
pub async fn gradient_reversal_matches_its_cpu_twin(context: GpuContext) {
    let kernels = Kernels::new(context);
    let context = kernels.context();
    for (len, scale) in [(1, -0.5f32), (130, -1.0), (4001, -0.03)] {
        let (x, y, relu_out) = (values(len, 1), values(len.div_ceil(2), 2), values(len, 3));
        let mut twin = x.clone();
        elementwise::reversal_reference(&mut twin, &y, &relu_out, scale);
        let [y_buf, relu_buf, x_buf] = [&y, &relu_out, &x].map(|v| context.upload("test input", v));
        let staging = context.staging((len * 4) as u64);
        let max = context.limits().max_compute_workgroups_per_dimension;
        let call = elementwise::reversal((len, y.len()), scale, [&y_buf, &relu_buf, &x_buf], max);
        let recorded = kernels.record("test", &[call]).await.unwrap();
        let got = kernels.run(&recorded, &[(&x_buf, &staging, len)]).await.unwrap().remove(0);
        let error = relative_error(&got, &twin);
        assert!(error < 1e-6, "len {len} scale {scale}: error {error}");
        assert!(len == 1 || (twin.contains(&0.0) && twin.iter().any(|&v| v != 0.0)));
    }
}

/// The small training kernels against plain loops, over lengths that do not divide the
/// workgroup: `add`, `relu6_grad`, `mask` (dropout, and through a ReLU), `spread` (the
/// mean's backward), `column_sum` (a bias's gradient) and `gather` (a batch's rows).
pub async fn elementwise_training_kernels_match_their_twins(context: GpuContext) {
    let kernels = Kernels::new(context);
    let max = kernels.context().limits().max_compute_workgroups_per_dimension;
    for len in [1, 63, 1000] {
        let (x, y) = (values(len, 31), values(len, 32));
        let got = run_on(&kernels, &[&y, &x], &[1], |b| vec![backward::add(len, [&b[0], &b[1]], max)]).await;
        let twin: Vec<f32> = x.iter().zip(&y).map(|(x, y)| x + y).collect();
        assert_eq!(got[0], twin, "add, len {len}");

        // ReLU6 outputs over [-4, 8]: both ends clamp somewhere.
        let relu6_out: Vec<f32> = values(len, 33).iter().map(|v| v * 6.0 + 2.0).collect();
        let got =
            run_on(&kernels, &[&relu6_out, &x], &[1], |b| vec![backward::relu6_grad(len, [&b[0], &b[1]], max)]).await;
        let twin: Vec<f32> =
            x.iter().zip(&relu6_out).map(|(&g, &o)| if o <= 0.0 || o >= 6.0 { 0.0 } else { g }).collect();
        assert_eq!(got[0], twin, "relu6_grad, len {len}");

        let keep: Vec<f32> = values(len, 34).iter().map(|&v| if v > 0.0 { 2.0 } else { 0.0 }).collect();
        for relu_of in [false, true] {
            let got = run_on(&kernels, &[&keep, &y, &x], &[2], |b| {
                vec![elementwise::mask(len, relu_of, [&b[0], &b[1], &b[2]], max)]
            })
            .await;
            let twin: Vec<f32> = (0..len).map(|i| if relu_of && y[i] <= 0.0 { 0.0 } else { x[i] * keep[i] }).collect();
            assert_eq!(got[0], twin, "mask (through a ReLU: {relu_of}), len {len}");
        }
    }
    for (batch, pixels, channels) in [(1, 1, 1), (2, 49, 20), (3, 7, 65)] {
        let (dmean, len) = (values(batch * channels, 35), batch * pixels * channels);
        let got = run_on(&kernels, &[&dmean, &vec![0.0; len]], &[1], |b| {
            vec![backward::spread(batch, pixels, channels, [&b[0], &b[1]], max)]
        })
        .await;
        let twin: Vec<f32> =
            (0..len).map(|i| dmean[i / (pixels * channels) * channels + i % channels] / pixels as f32).collect();
        assert!(relative_error(&got[0], &twin) < 1e-6, "spread {batch}x{pixels}x{channels}");
    }
    for (rows, columns) in [(1, 1), (17, 3), (100, 70)] {
        let x = values(rows * columns, 36);
        let got = run_on(&kernels, &[&x, &vec![0.0; columns]], &[1], |b| {
            vec![elementwise::column_sum(rows, columns, [&b[0], &b[1]])]
        })
        .await;
        let twin: Vec<f32> =
            (0..columns).map(|c| (0..rows).map(|r| x[r * columns + c] as f64).sum::<f64>() as f32).collect();
        assert!(relative_error(&got[0], &twin) < 1e-6, "column_sum {rows}x{columns}");

        // Rows in reverse, the first again: any order, repeats allowed (indices as f32).
        let picked: Vec<f32> = (0..rows).rev().chain([0]).map(|r| r as f32).collect();
        let output = vec![0.0; picked.len() * columns];
        let got = run_on(&kernels, &[&x, &picked, &output], &[2], |b| {
            vec![elementwise::gather(picked.len(), columns, [&b[0], &b[1], &b[2]], max)]
        })
        .await;
        let twin: Vec<f32> =
            picked.iter().flat_map(|&r| &x[r as usize * columns..(r as usize + 1) * columns]).copied().collect();
        assert_eq!(got[0], twin, "gather {rows}x{columns}");
    }
}

/// The loss, its gradient and the predictions against Candle's cross-entropy and autograd
/// (what the CPU trainer runs), over batches that do not divide the workgroup.
pub async fn softmax_xent_matches_candles_cross_entropy_and_its_gradient(context: GpuContext) {
    let kernels = Kernels::new(context);
    let max = kernels.context().limits().max_compute_workgroups_per_dimension;
    for (rows, classes) in [(1, 2), (7, 3), (130, 10)] {
        // Distinct logits in each row (the offset breaks ties), so that the argmax is one.
        let logits: Vec<f32> =
            values(rows * classes, 41).iter().enumerate().map(|(i, v)| v * 4.0 + (i % classes) as f32 * 1e-4).collect();
        let labels: Vec<u32> = (0..rows).map(|r| ((r * 7 + 3) % classes) as u32).collect();
        let labels_f32: Vec<f32> = labels.iter().map(|&l| l as f32).collect();
        let (grad, per_row) = (vec![0.0; rows * classes], vec![0.0; 2 * rows]);
        let got = run_on(&kernels, &[&logits, &labels_f32, &grad, &per_row], &[2, 3], |b| {
            vec![softmax_xent::call(rows, classes, [&b[0], &b[1], &b[2], &b[3]], max)]
        })
        .await;

        let z = candle_core::Var::from_vec(logits.clone(), (rows, classes), &Device::Cpu).unwrap();
        let target = Tensor::from_vec(labels, rows, &Device::Cpu).unwrap();
        let loss = candle_nn::loss::cross_entropy(z.as_tensor(), &target).unwrap();
        let twin_grad =
            loss.backward().unwrap().get(z.as_tensor()).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let twin_loss = loss.to_scalar::<f32>().unwrap();
        let twin_predicted: Vec<f32> =
            z.as_tensor().argmax(1).unwrap().to_vec1::<u32>().unwrap().into_iter().map(|p| p as f32).collect();

        let got_loss = got[1].iter().step_by(2).map(|&l| l as f64).sum::<f64>() as f32 / rows as f32;
        let predicted: Vec<f32> = got[1].iter().skip(1).step_by(2).copied().collect();
        assert!(relative_error(&got[0], &twin_grad) < 1e-5, "{rows}x{classes}: gradient");
        assert!(
            (got_loss - twin_loss).abs() <= 1e-5 * twin_loss.abs().max(1.0),
            "{rows}x{classes}: loss {got_loss} vs {twin_loss}"
        );
        assert_eq!(predicted, twin_predicted, "{rows}x{classes}: predictions");
    }
}

/// Three AdamW steps on the same buffers (the step count in each call's parameters) against
/// Candle's `AdamW` with the same rate and weight decay, gradients given.
pub async fn adamw_matches_candles_adamw_over_three_steps(context: GpuContext) {
    use candle_nn::Optimizer;
    let kernels = Kernels::new(context);
    let max = kernels.context().limits().max_compute_workgroups_per_dimension;
    let (rate, decay) = (0.01, 0.1);
    for len in [1, 65, 3000] {
        let theta = values(len, 51);
        let grads: Vec<Vec<f32>> = (52..55).map(|seed| values(len, seed)).collect();
        let zeros = vec![0.0; len];
        let buffers = [&grads[0][..], &grads[1], &grads[2], &theta, &zeros, &zeros];
        let got = run_on(&kernels, &buffers, &[3, 4, 5], |b| {
            (0..3)
                .map(|step| {
                    let params = adamw::params(len, rate, decay, step as u32 + 1);
                    adamw::call(params, [&b[step], &b[3], &b[4], &b[5]], max)
                })
                .collect()
        })
        .await;

        let var = candle_core::Var::from_vec(theta.clone(), len, &Device::Cpu).unwrap();
        let settings = candle_nn::ParamsAdamW { lr: rate, weight_decay: decay, ..Default::default() };
        let mut optimizer = candle_nn::AdamW::new(vec![var.clone()], settings).unwrap();
        for grad in &grads {
            // d/dtheta of sum(theta * grad) is grad.
            let g = Tensor::from_vec(grad.clone(), len, &Device::Cpu).unwrap();
            optimizer.backward_step(&(var.as_tensor() * g).unwrap().sum_all().unwrap()).unwrap();
        }
        let twin = var.as_tensor().to_vec1::<f32>().unwrap();
        assert!(relative_error(&got[0], &twin) < 1e-6, "len {len}: theta after three steps");
        assert!(got[0] != theta && got[1].iter().any(|&m| m != 0.0) && got[2].iter().all(|&v| v >= 0.0));
    }
}

/// The frozen batch norm folded into its conv (`bn_fold`) and the gradients back through the
/// fold (`bn_unfold`) against the same fold written with Candle's ops and its autograd, in
/// both layouts of the folded weight.
pub async fn bn_fold_and_unfold_match_candles_fold_and_its_gradient(context: GpuContext) {
    let kernels = Kernels::new(context);
    let max = kernels.context().limits().max_compute_workgroups_per_dimension;
    let cpu = &Device::Cpu;
    for (channels, per_channel, taps) in [(1, 1, false), (20, 9, true), (70, 33, false)] {
        let shape = backward::FoldShape { channels, per_channel, eps: 1e-3, taps };
        let (weight, gamma, beta) = (values(channels * per_channel, 61), values(channels, 62), values(channels, 63));
        let (mean, var): (Vec<f32>, Vec<f32>) =
            (values(channels, 64), values(channels, 65).iter().map(|v| v.abs() + 0.1).collect());
        let stats: Vec<f32> = mean.iter().chain(&var).copied().collect();
        let (d_folded, d_bias) = (values(channels * per_channel, 66), values(channels, 67));
        let (folded, bias) = (vec![0.0; weight.len()], vec![0.0; channels]);
        let got_fold = run_on(&kernels, &[&weight, &gamma, &beta, &stats, &folded, &bias], &[4, 5], |b| {
            vec![backward::bn_fold(shape, [&b[0], &b[1], &b[2], &b[3], &b[4], &b[5]], max)]
        })
        .await;
        let got_unfold =
            run_on(&kernels, &[&weight, &gamma, &stats, &d_folded, &d_bias, &folded, &bias], &[5, 6], |b| {
                vec![backward::bn_unfold(shape, [&b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &b[6]])]
            })
            .await;

        let tensor = |v: &[f32], shape: &[usize]| Tensor::from_vec(v.to_vec(), shape.to_vec(), cpu).unwrap();
        let w = candle_core::Var::from_tensor(&tensor(&weight, &[channels, per_channel])).unwrap();
        let g = candle_core::Var::from_tensor(&tensor(&gamma, &[channels])).unwrap();
        let scale = (g.as_tensor() / (tensor(&var, &[channels]) + 1e-3).unwrap().sqrt().unwrap()).unwrap();
        let twin_folded = w.as_tensor().broadcast_mul(&scale.unsqueeze(1).unwrap()).unwrap();
        let twin_bias = (tensor(&beta, &[channels]) - (tensor(&mean, &[channels]) * &scale).unwrap()).unwrap();
        // The folded weight as stored: (K, C) with taps.
        let stored = |t: &Tensor| if taps { t.t().unwrap().contiguous().unwrap() } else { t.clone() };
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!(relative_error(&got_fold[0], &flat(&stored(&twin_folded))) < 1e-6, "{shape:?}: folded weight");
        assert!(relative_error(&got_fold[1], &flat(&twin_bias)) < 1e-6, "{shape:?}: folded bias");

        // d_folded is given as stored; the loss is <folded, d_folded> + <bias, d_bias>.
        let d_folded_cm = if taps {
            tensor(&d_folded, &[per_channel, channels]).t().unwrap()
        } else {
            tensor(&d_folded, &[channels, per_channel])
        };
        let loss = ((twin_folded * d_folded_cm).unwrap().sum_all().unwrap()
            + (twin_bias * tensor(&d_bias, &[channels])).unwrap().sum_all().unwrap())
        .unwrap();
        let grads = loss.backward().unwrap();
        let (twin_dw, twin_dgamma) = (flat(grads.get(w.as_tensor()).unwrap()), flat(grads.get(g.as_tensor()).unwrap()));
        assert!(relative_error(&got_unfold[0], &twin_dw) < 1e-5, "{shape:?}: weight gradient");
        assert!(relative_error(&got_unfold[1], &twin_dgamma) < 1e-5, "{shape:?}: gamma gradient");
    }
}

pub async fn depthwise_matches_its_cpu_twin(context: GpuContext) {
    let kernels = Kernels::new(context);
    let max = kernels.context().limits().max_compute_workgroups_per_dimension;
    let cases = [(1, 5, 7, 12), (2, 9, 9, 8), (2, 14, 13, 36), (1, 1, 1, 4)];
    for ((batch, height, width, channels), window) in cases.into_iter().flat_map(with_windows) {
        let shape = DepthwiseShape { height, width, channels, window };
        let input = values(batch * height * width * channels, 5);
        let (taps, bias) = (values(window.taps() * channels, 6), values(channels, 7));
        let per_image = height * width * channels;
        let twin: Vec<f32> = (0..batch)
            .flat_map(|b| depthwise_reference(shape, &input[b * per_image..(b + 1) * per_image], &taps, &bias))
            .collect();
        let got = run_kernel(&kernels, &[&input, &taps, &bias], twin.len(), |b, out| {
            depthwise::call(shape, batch, [&b[0], &b[1], &b[2], out], max)
        })
        .await;
        let error = relative_error(&got, &twin);
        assert!(error < 1e-5, "{shape:?} batch {batch}: error {error}");
    }
}

pub async fn depthwise_gradients_match_their_cpu_twin(context: GpuContext) {
    let kernels = Kernels::new(context);
    let max = kernels.context().limits().max_compute_workgroups_per_dimension;
    let cases = [(1, 5, 7, 12), (2, 9, 9, 8), (3, 14, 13, 36), (2, 1, 1, 4)];
    for ((batch, height, width, channels), window) in cases.into_iter().flat_map(with_windows) {
        let shape = DepthwiseShape { height, width, channels, window };
        let per_image = height * width * channels;
        let per_output = shape.out_height() * shape.out_width() * channels;
        let (input, taps) = (values(batch * per_image, 21), values(window.taps() * channels, 22));
        let grad = values(batch * per_output, 23);
        let (mut dx, mut dtaps) = (Vec::new(), vec![0f32; taps.len()]);
        for b in 0..batch {
            let image = &input[b * per_image..(b + 1) * per_image];
            let (image_dx, image_dtaps) =
                depthwise_backward_reference(shape, image, &taps, &grad[b * per_output..(b + 1) * per_output]);
            dx.extend(image_dx);
            dtaps.iter_mut().zip(image_dtaps).for_each(|(sum, d)| *sum += d);
        }
        let got_dx = run_kernel(&kernels, &[&grad, &taps], dx.len(), |b, out| {
            backward::depthwise_grad_input(shape, batch, [&b[0], &b[1], out], max)
        })
        .await;
        let got_dtaps = run_kernel(&kernels, &[&grad, &input], dtaps.len(), |b, out| {
            backward::depthwise_grad_taps(shape, batch, [&b[0], &b[1], out])
        })
        .await;
        let (error_dx, error_dtaps) = (relative_error(&got_dx, &dx), relative_error(&got_dtaps, &dtaps));
        assert!(error_dx < 1e-5 && error_dtaps < 1e-5, "{shape:?} batch {batch}: dx {error_dx}, dtaps {error_dtaps}");
    }
}

pub async fn stem_convolution_matches_im2col_and_product(context: GpuContext) {
    let kernels = Kernels::new(context);
    for (batch, height, width, in_channels, out_channels, window) in [
        (2, 11, 13, 3, 16, Window::symmetric(3, 2)),
        (1, 8, 8, 3, 32, Window::symmetric(3, 1)),
        (1, 5, 6, 8, 12, Window::symmetric(3, 2)),
        (2, 12, 10, 3, 8, Window::same(3, 2)),
    ] {
        let shape = DepthwiseShape { height, width, channels: in_channels, window };
        let input = values(batch * height * width * in_channels, 8);
        let (weight, bias) = (values(9 * in_channels * out_channels, 9), values(out_channels, 10));
        let (oh, ow) = (shape.out_height(), shape.out_width());
        let per_image = height * width * in_channels;
        let twin: Vec<f32> = (0..batch)
            .flat_map(|b| {
                let mut cols = vec![0f32; oh * ow * 9 * in_channels];
                im2col3x3(shape, &input[b * per_image..(b + 1) * per_image], &mut cols);
                let product = PointwiseShape { pixels: oh * ow, in_channels: 9 * in_channels, out_channels };
                pointwise_reference(product, &cols, &weight, &bias, None, true)
            })
            .collect();
        let got = run_kernel(&kernels, &[&input, &weight, &bias], twin.len(), |b, out| {
            conv3x3::call(shape, batch, out_channels, true, [&b[0], &b[1], &b[2], out])
        })
        .await;
        let error = relative_error(&got, &twin);
        assert!(error < 1e-5, "{shape:?} -> {out_channels}: error {error}");
    }
}

pub async fn mean_matches_pooled(context: GpuContext) {
    let kernels = Kernels::new(context);
    let max = kernels.context().limits().max_compute_workgroups_per_dimension;
    let map = FeatureMap { data: values(3 * 7 * 5 * 20, 11), batch: 3, height: 7, width: 5, channels: 20 };
    let twin = map.pooled();
    let got = run_kernel(&kernels, &[&map.data], twin.len(), |b, out| mean::call(3, 35, 20, [&b[0], out], max)).await;
    assert!(relative_error(&got, &twin) < 1e-6);
}

pub async fn matmul_matches_a_triple_loop_with_every_transpose(context: GpuContext) {
    let kernels = Kernels::new(context);
    for (m, n, k) in [(1, 1, 1), (16, 3, 1280), (33, 65, 17), (100, 2, 16)] {
        for (trans_a, trans_b) in [(false, false), (true, false), (false, true), (true, true)] {
            let shape = MatmulShape { m, n, k, trans_a, trans_b };
            let (a, b, bias) = (values(m * k, 12), values(k * n, 13), values(n, 14));
            let relu = Epilogue { bias: true, relu: true, relu6: false };
            let relu6 = Epilogue { bias: true, relu: false, relu6: true };
            for epilogue in [Epilogue::default(), relu, relu6] {
                let twin = matmul_reference(shape, epilogue, &a, &b, &bias);
                let got = run_kernel(&kernels, &[&a, &b, &bias], twin.len(), |x, out| {
                    matmul::call(shape, epilogue, [&x[0], &x[1], &x[2], out])
                })
                .await;
                let error = relative_error(&got, &twin);
                assert!(error < 1e-5, "{shape:?} {epilogue:?}: error {error}");
            }
        }
    }
}

pub async fn backbone_features_and_boundary_activations_match_the_cpu_executor(context: GpuContext) {
    let plan = random_plan();
    let cpu = CpuExecutor::new(Arc::clone(&plan));
    let gpu = GpuExecutor::new(context, Arc::clone(&plan)).await.unwrap();
    // Two images of 160 pixels: every stage ends on an odd size that no tile divides (80, 40,
    // 20, 10, 5), as at 224, for a third of the work on SwiftShader (3 images of 224 took 30 s).
    let x = input_batch(2, 160);
    let want: Vec<f32> = cpu.features_now(&x).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    let got: Vec<f32> = gpu.features(&x).await.unwrap().flatten_all().unwrap().to_vec1().unwrap();
    let error = relative_error(&got, &want);
    println!("features of 2 images, GPU vs CPU: max relative error {error:.2e}");
    assert!(error <= 1e-3, "features: {error}");
    // A frozen prefix up to a freeze boundary, then the rest from there.
    let map = FeatureMap::from_nchw(&x).unwrap();
    let boundary = plan.num_blocks() - 3;
    let want = cpu.run_now(&map, 0..boundary).unwrap();
    let got = gpu.run(&map, 0..boundary).await.unwrap();
    assert_eq!((got.height, got.width, got.channels), (want.height, want.width, want.channels));
    assert!(relative_error(&got.data, &want.data) <= 1e-3);
    let rest = gpu.run(&got, boundary..plan.num_blocks()).await.unwrap();
    let want_rest = cpu.run_now(&want, boundary..plan.num_blocks()).unwrap();
    assert!(relative_error(&rest.data, &want_rest.data) <= 1e-3);
}

pub async fn a_batch_over_the_buffer_limit_is_cut_into_chunks(context: GpuContext) {
    let plan = random_plan();
    let mut gpu = GpuExecutor::new(context, Arc::clone(&plan)).await.unwrap();
    // The largest activation of one 96x96 image is 48*48*96 floats; room for two images.
    gpu.limit_binding_size(2 * 48 * 48 * 96 * 4 + 4);
    let x = input_batch(5, 96);
    let want: Vec<f32> = CpuExecutor::new(plan).features_now(&x).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    let got: Vec<f32> = gpu.features(&x).await.unwrap().flatten_all().unwrap().to_vec1().unwrap();
    assert_eq!(gpu.programs_compiled(), 2, "chunks of 2, 2 and 1 images: two programs");
    assert!(relative_error(&got, &want) <= 1e-3);
    gpu.limit_binding_size(1000);
    let error = gpu.features(&x).await.unwrap_err();
    assert!(error.is_gpu() && error.to_string().contains("exceeds"), "{error}");
}

pub async fn a_lost_device_hands_the_work_in_flight_to_the_cpu(context: GpuContext) {
    let plan = random_plan();
    let backend = Backend::new(CpuExecutor::new(Arc::clone(&plan)));
    backend.attach(GpuExecutor::new(context.clone(), Arc::clone(&plan)).await.unwrap());
    assert_eq!(backend.status().kind, BackendKind::Webgpu);
    let x = input_batch(2, 64);
    let want: Vec<f32> = backend.cpu().features_now(&x).unwrap().flatten_all().unwrap().to_vec1().unwrap();
    context.lose_device();
    let got: Vec<f32> = backend.features(&x).await.unwrap().flatten_all().unwrap().to_vec1().unwrap();
    assert_eq!(got, want, "the item in flight is redone on the CPU");
    let status = backend.status();
    assert_eq!(status.kind, BackendKind::Cpu);
    let reason = status.cpu_reason.as_ref().map(|r| r.to_string()).unwrap_or_default();
    assert!(reason.contains("lost"), "{status:?}");
}

pub async fn a_plan_without_a_kernel_stays_on_the_cpu_and_says_why(context: GpuContext) {
    let unit = Unit::Pointwise { in_channels: 4, weight: values(12, 1), bias: values(3, 2), relu: true };
    let odd = FoldedPlan::new(vec![FoldedBlock { units: vec![unit], residual: false }]);
    let error = GpuExecutor::new(context, Arc::new(odd)).await.unwrap_err();
    assert!(error.is_gpu() && error.to_string().contains("no variant"), "{error}");
}

pub async fn a_shader_that_does_not_compile_is_a_typed_error(context: GpuContext) {
    static BROKEN: Kernel = Kernel {
        name: "broken",
        source: "@compute @workgroup_size(1) fn main() { let x: u32 = ; }",
        params: ParamsLayout::of::<LinearParams>(),
        bindings: &[],
    };
    let kernels = Kernels::new(context);
    let call = KernelCall {
        kernel: &BROKEN,
        constants: Vec::new(),
        params: Params::of(LinearParams::new(0)),
        buffers: Vec::new(),
        workgroups: [1, 1, 1],
    };
    let error = kernels.record("compiling a broken kernel", &[call]).await.expect_err("a broken shader is refused");
    assert!(error.is_gpu() && error.to_string().contains("compiling a broken kernel"), "{error}");
}

pub async fn a_device_the_adapter_refuses_is_a_typed_error(_context: GpuContext) {
    let error = GpuContext::request_with(true, |limits| limits.max_bind_groups = u32::MAX)
        .await
        .expect_err("limits beyond the adapter's are refused");
    assert!(matches!(error, graft::GraftError::GpuUnavailable(_)), "{error}");
    assert!(error.to_string().contains("refused a device"), "{error}");
}

pub async fn explicit_cpu_and_auto_choices_are_honoured(_context: GpuContext) {
    let plan = random_plan();
    let backend = Backend::new(CpuExecutor::new(plan));
    let status = backend.select(BackendChoice::Cpu).await.unwrap();
    assert_eq!((status.kind, status.cpu_reason), (BackendKind::Cpu, None));
    // auto never fails: a hardware GPU is used, a software one (lavapipe) or none is refused
    // with the reason.
    let status = backend.select(BackendChoice::Auto).await.unwrap();
    match status.kind {
        BackendKind::Cpu => assert!(status.cpu_reason.unwrap().to_string().starts_with("auto chose the CPU")),
        _ => assert!(status.description.starts_with("WebGPU")),
    }
}

pub async fn head_training_on_the_gpu_matches_the_cpu_trainer(context: GpuContext) {
    for hidden in [8, 0] {
        let config = TrainConfig { epochs: 4, batch_size: 16, hidden, dropout: 0.2, ..TrainConfig::default() };
        let mut cpu = blob_trainer(config.clone());
        let mut gpu = blob_trainer(config);
        gpu.use_gpu(context.clone()).await.unwrap();
        assert!(gpu.device_description().starts_with("WebGPU"));
        for _ in 0..4 {
            let (want, got) = (cpu.run_epoch().await.unwrap(), gpu.run_epoch().await.unwrap());
            println!(
                "hidden {hidden}, epoch {}: train loss CPU {} GPU {}",
                want.epoch, want.train_loss, got.train_loss
            );
            assert!(close(got.train_loss, want.train_loss), "hidden {hidden}: {got:?} vs {want:?}");
            assert!(close(got.val_loss.unwrap(), want.val_loss.unwrap()), "hidden {hidden}: {got:?} vs {want:?}");
            assert_eq!(got.confusion, want.confusion);
        }
        let (want, got) = (cpu.finish().await.unwrap(), gpu.finish().await.unwrap());
        assert_eq!(got.report.best_epoch, want.report.best_epoch);
        assert!(
            close(got.report.val_loss, want.report.val_loss),
            "{} vs {}",
            got.report.val_loss,
            want.report.val_loss
        );
    }
}

pub async fn a_device_lost_mid_training_continues_on_the_cpu_from_the_best_weights(context: GpuContext) {
    let config = TrainConfig { epochs: 6, batch_size: 8, hidden: 8, learning_rate: 0.02, ..TrainConfig::default() };
    let mut trainer = blob_trainer(config);
    trainer.use_gpu(context.clone()).await.unwrap();
    let first = trainer.run_epoch().await.unwrap();
    trainer.run_epoch().await.unwrap();
    // The device is destroyed in the middle of the third epoch, between two of its 8 batches
    // (the trainer reads the clock after each one).
    let batches = std::cell::Cell::new(0);
    let clock = || {
        batches.set(batches.get() + 1);
        if batches.get() == 4 {
            context.lose_device();
        }
        0.0
    };
    let third = trainer.step_for(&clock, f64::INFINITY).await.unwrap().expect("the third epoch ended");
    let description = trainer.device_description();
    assert!(description.starts_with("CPU (") && description.contains("lost"), "{description}");
    assert!(third.train_loss.is_finite() && third.val_loss.is_some_and(f32::is_finite), "{third:?}");
    let mut rest = vec![third];
    while !trainer.is_done() {
        rest.push(trainer.run_epoch().await.unwrap());
    }
    assert_eq!(rest.len(), 4);
    let description = trainer.device_description();
    assert!(description.starts_with("CPU (") && description.contains("lost"), "{description}");
    let trained = trainer.finish().await.unwrap();
    assert!(trained.report.val_loss <= first.val_loss.unwrap(), "the head kept learning on the CPU");
    assert!(trained.report.val_accuracy > 0.9, "{:?}", trained.report);
}

/// Which blocks a fine-tuning test unfreezes, and the channels entering them.
#[derive(Clone, Copy)]
pub struct Suffix {
    pub unfreeze: usize,
    pub channels: usize,
    /// A weight of the first unfrozen block, compared after training.
    pub weight: &'static str,
}

/// MobileNetV2's last three blocks.
const MOBILENET_SUFFIX: Suffix = Suffix { unfreeze: 3, channels: 160, weight: "features.17.conv.0.0.weight" };

fn fine_tuning_trainer(config: TrainConfig, backbone: &Backbone, suffix: Suffix) -> Trainer {
    let (inputs, labels) = boundary_activations(suffix.channels, 11);
    let config = TrainConfig { unfreeze: suffix.unfreeze, ..config };
    Trainer::fine_tuning(TrainData::new(inputs, labels, abc()), config, backbone).unwrap()
}

fn abc() -> Vec<String> {
    vec!["a".into(), "b".into(), "c".into()]
}

/// The side of the fine-tuning cases' boundary activations. The backbones' is 7 at 224 x 224;
/// 5 keeps a partial tile of the depthwise kernel's 4 output columns (as 7 does) at half the
/// pixels, which is what a case on SwiftShader or lavapipe spends its time on.
const SIDE: usize = 5;

/// 13 random boundary activations `(SIDE, SIDE, channels)` from `seed`, whose class (of 3)
/// shifts every third channel: batches of 8 end in a partial one of 5.
fn boundary_activations(channels: usize, seed: u64) -> (Tensor, Vec<usize>) {
    let n = 13;
    let mut rng = graft::train::rng::SplitMix64::new(seed);
    let labels: Vec<usize> = (0..n).map(|i| i % 3).collect();
    let mut data = Vec::with_capacity(n * SIDE * SIDE * channels);
    for &label in &labels {
        for _ in 0..SIDE * SIDE {
            data.extend((0..channels).map(|c| rng.next_f32() - 0.5 + if c % 3 == label { 0.5 } else { 0.0 }));
        }
    }
    (Tensor::from_vec(data, (n, SIDE, SIDE, channels), &Device::Cpu).unwrap(), labels)
}

/// Two epochs, a head stage then one of the blocks (a batch of 8 and a partial one of 5: two
/// optimizer steps), with the training loss as the selection.
fn fine_tuning_config() -> TrainConfig {
    TrainConfig {
        epochs: 2,
        head_epochs: 1,
        batch_size: 8,
        hidden: 8,
        dropout: 0.2,
        backbone_learning_rate: 1e-3,
        cosine_decay: true,
        // Selection on the training loss, which falls epoch after epoch here: the run keeps
        // the last epoch's blocks, whose weights the test compares.
        val_fraction: 0.0,
        ..TrainConfig::default()
    }
}

/// Relative closeness for values that went through several optimizer steps.
fn near(a: f32, b: f32) -> bool {
    (a - b).abs() <= 2e-3 * b.abs().max(1e-2)
}

pub async fn fine_tuning_on_the_gpu_matches_the_cpu_trainer(context: GpuContext) {
    let backbone = random_backbone();
    fine_tuning_matches(context.clone(), &backbone, MOBILENET_SUFFIX).await;
    // Training-mode batch norm has no GPU kernels: the run says so and stays on the CPU.
    let config = TrainConfig { batch_norm: BatchNormMode::Train, ..TrainConfig::default() };
    let mut train_bn = fine_tuning_trainer(config, &backbone, MOBILENET_SUFFIX);
    assert!(train_bn.use_gpu(context).await.is_err());
    assert!(train_bn.device_description().contains("batch norm"), "{}", train_bn.device_description());
}

/// EfficientNet-Lite0's last four blocks: two with 5x5 depthwise convolutions (TensorFlow's
/// padding), the 3x3 one and the head conv.
pub async fn efficientnet_lite0_fine_tuning_on_the_gpu_matches_the_cpu_trainer(context: GpuContext) {
    let backbone = random_backbone_of(graft::backbone::Architecture::EfficientNetLite0);
    let suffix = Suffix { unfreeze: 4, channels: 192, weight: "_blocks.13._depthwise_conv.weight" };
    fine_tuning_matches(context, &backbone, suffix).await;
}

/// Two epochs of `suffix` of `backbone` (a head stage, then fine-tuning) give the CPU
/// trainer's losses and move the blocks' weights the same way on the GPU.
pub async fn fine_tuning_matches(context: GpuContext, backbone: &Backbone, suffix: Suffix) {
    let config = fine_tuning_config();
    let mut cpu = fine_tuning_trainer(config.clone(), backbone, suffix);
    let mut gpu = fine_tuning_trainer(config.clone(), backbone, suffix);
    gpu.use_gpu(context).await.unwrap();
    assert!(gpu.device_description().starts_with("WebGPU"), "{}", gpu.device_description());
    for _ in 0..2 {
        let (want, got) = (cpu.run_epoch().await.unwrap(), gpu.run_epoch().await.unwrap());
        println!("epoch {} ({:?}): train loss CPU {} GPU {}", want.epoch, want.stage, want.train_loss, got.train_loss);
        assert_eq!(got.stage, want.stage);
        assert!(near(got.train_loss, want.train_loss), "{got:?} vs {want:?}");
    }
    let (want, got) = (cpu.finish().await.unwrap(), gpu.finish().await.unwrap());
    assert_eq!((got.report.best_epoch, want.report.best_epoch), (2, 2));
    let fresh = fine_tuning_trainer(config, backbone, suffix).finish().await.unwrap();
    assert_blocks_moved_alike(&want, &got, &fresh, suffix.weight);
}

/// The weight `name` of the first unfrozen block moved from its pretrained value (in
/// `fresh`) on the CPU (`want`), and the GPU's (`got`) differs from the CPU's by much less.
fn assert_blocks_moved_alike(
    want: &graft::train::TrainedHead,
    got: &graft::train::TrainedHead,
    fresh: &graft::train::TrainedHead,
    name: &str,
) {
    let weight = |head: &graft::train::TrainedHead| {
        let suffix = head.suffix().unwrap();
        let (_, var) = suffix.vars().iter().find(|(n, _)| n == name).unwrap();
        var.as_tensor().flatten_all().unwrap().to_vec1::<f32>().unwrap()
    };
    let (pretrained, cpu_weight, gpu_weight) = (weight(fresh), weight(want), weight(got));
    // Euclidean distances: AdamW moves a weight whose gradient is near zero by about the
    // learning rate whatever its sign, so the odd element may differ by that much; the whole
    // tensor's change must agree.
    let distance = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f32>().sqrt();
    let moved = distance(&cpu_weight, &pretrained);
    let error = distance(&gpu_weight, &cpu_weight);
    println!("{name}: moved {moved} from pretrained on the CPU, GPU differs from the CPU by {error}");
    assert!(moved > 1e-2, "the blocks learned: {moved}");
    assert!(error < moved / 20.0, "GPU {error} vs moved {moved}");
}

pub async fn augmented_head_training_on_the_gpu_matches_the_cpu_trainer(context: GpuContext) {
    let make = || {
        let (inputs, labels) = blobs(12);
        let views = (1..3).map(|k| (&inputs * (1.0 + 0.1 * k as f64)).unwrap()).collect();
        let data = TrainData { inputs, views, labels, class_names: abc(), target: None };
        Trainer::new(data, TrainConfig { epochs: 3, batch_size: 8, hidden: 8, ..TrainConfig::default() }).unwrap()
    };
    let (mut cpu, mut gpu) = (make(), make());
    gpu.use_gpu(context).await.unwrap();
    for _ in 0..3 {
        let (want, got) = (cpu.run_epoch().await.unwrap(), gpu.run_epoch().await.unwrap());
        assert!(close(got.train_loss, want.train_loss), "{got:?} vs {want:?}");
        assert_eq!(got.confusion, want.confusion);
    }
}

/// An adapting run on the blobs towards the same blobs shifted: its losses and domain accuracy
/// on the GPU match the CPU trainer's epoch after epoch.
pub async fn adapting_head_training_on_the_gpu_matches_the_cpu_trainer(context: GpuContext) {
    let make = || {
        let (inputs, labels) = blobs(20);
        let target = (&inputs + 0.7).unwrap();
        let data = TrainData { target: Some(target), ..TrainData::new(inputs, labels, abc()) };
        let adapt = Adapt { enabled: true, weight: 1.0 };
        let config =
            TrainConfig { epochs: 4, batch_size: 16, hidden: 8, dropout: 0.2, adapt, ..TrainConfig::default() };
        Trainer::new(data, config).unwrap()
    };
    let (mut cpu, mut gpu) = (make(), make());
    gpu.use_gpu(context.clone()).await.unwrap();
    assert!(gpu.device_description().starts_with("WebGPU"), "{}", gpu.device_description());
    for _ in 0..4 {
        let (want, got) = (cpu.run_epoch().await.unwrap(), gpu.run_epoch().await.unwrap());
        println!(
            "epoch {}: train loss CPU {} GPU {}, domain accuracy CPU {:?} GPU {:?}",
            want.epoch, want.train_loss, got.train_loss, want.domain_accuracy, got.domain_accuracy
        );
        assert!(close(got.train_loss, want.train_loss), "{got:?} vs {want:?}");
        assert!(close(got.val_loss.unwrap(), want.val_loss.unwrap()), "{got:?} vs {want:?}");
        assert_eq!(got.domain_accuracy, want.domain_accuracy);
    }
    let (want, got) = (cpu.finish().await.unwrap(), gpu.finish().await.unwrap());
    assert!(got.report.kept_final && want.report.kept_final);
    assert!(close(got.report.val_loss, want.report.val_loss), "{} vs {}", got.report.val_loss, want.report.val_loss);
    // A linear head has no hidden layer for the GPU's adaptation: the run says so.
    let (inputs, labels) = blobs(5);
    let data = TrainData { target: Some(inputs.clone()), ..TrainData::new(inputs, labels, abc()) };
    let adapt = Adapt { enabled: true, weight: 1.0 };
    let mut linear = Trainer::new(data, TrainConfig { hidden: 0, adapt, ..TrainConfig::default() }).unwrap();
    assert!(linear.use_gpu(context).await.is_err());
    assert!(linear.device_description().contains("linear head"), "{}", linear.device_description());
}

/// Three adapting epochs of MobileNetV2's last three blocks (a head stage, then the blocks
/// join) on the GPU: the CPU trainer's losses and domain accuracy, and the same change of the
/// blocks' weights.
pub async fn adapting_fine_tuning_on_the_gpu_matches_the_cpu_trainer(context: GpuContext) {
    let backbone = random_backbone();
    let make = || {
        let (inputs, labels) = boundary_activations(MOBILENET_SUFFIX.channels, 11);
        let (target, _) = boundary_activations(MOBILENET_SUFFIX.channels, 12);
        let target = (target + 0.3).unwrap();
        let data = TrainData { target: Some(target), ..TrainData::new(inputs, labels, abc()) };
        let config = TrainConfig { adapt: Adapt { enabled: true, weight: 1.0 }, ..fine_tuning_config() };
        Trainer::fine_tuning(data, TrainConfig { unfreeze: MOBILENET_SUFFIX.unfreeze, ..config }, &backbone).unwrap()
    };
    let (mut cpu, mut gpu) = (make(), make());
    gpu.use_gpu(context).await.unwrap();
    assert!(gpu.device_description().starts_with("WebGPU"), "{}", gpu.device_description());
    for _ in 0..2 {
        let (want, got) = (cpu.run_epoch().await.unwrap(), gpu.run_epoch().await.unwrap());
        println!(
            "epoch {} ({:?}): train loss CPU {} GPU {}, domain accuracy CPU {:?} GPU {:?}",
            want.epoch, want.stage, want.train_loss, got.train_loss, want.domain_accuracy, got.domain_accuracy
        );
        assert!(near(got.train_loss, want.train_loss), "{got:?} vs {want:?}");
        let (want_domain, got_domain) = (want.domain_accuracy.unwrap(), got.domain_accuracy.unwrap());
        assert!((want_domain - got_domain).abs() <= 0.05, "domain accuracy {got_domain} vs {want_domain}");
    }
    let (want, got) = (cpu.finish().await.unwrap(), gpu.finish().await.unwrap());
    assert_blocks_moved_alike(&want, &got, &make().finish().await.unwrap(), MOBILENET_SUFFIX.weight);
}

/// A depthwise test case with each window the backbones use.
fn with_windows<T: Copy>(case: T) -> impl Iterator<Item = (T, Window)> {
    Window::all_used().into_iter().map(move |window| (case, window))
}

/// One case of the step-level parity test: what the steps train on, their settings, and the
/// blocks (a fresh copy for each step) when they come first.
struct StepCase {
    name: &'static str,
    data: TrainData,
    config: TrainConfig,
    /// The backbone and how many of its last blocks come first.
    blocks: Option<(Backbone, usize)>,
}

/// What a step gave over a case's batches: its first snapshot, every sample's score after each
/// batch, its weights at the end, and the score after restoring the first snapshot.
struct Driven {
    first: graft::train::step::Weights,
    scores: Vec<Scored>,
    weights: graft::train::step::Weights,
    restored: Scored,
}

/// The Candle step of `case`, initialised from the case's seed.
fn candle_step(case: &StepCase) -> CandleStep {
    let suffix = case.blocks.as_ref().map(|(b, unfreeze)| b.trainable_suffix(b.num_blocks() - unfreeze).unwrap());
    let in_dim = suffix.as_ref().map_or_else(|| case.data.inputs.dims2().unwrap().1, |s| s.feature_dim());
    let head = graft::model::MlpHeadSpec { in_dim, hidden: case.config.hidden, classes: case.data.class_names.len() };
    let spec = StepSpec { head, suffix, adapting: case.data.target.is_some() };
    let mut rng = graft::train::rng::SplitMix64::new(case.config.seed);
    CandleStep::new(spec, &case.config, &Device::Cpu, &mut rng).unwrap()
}

/// Drives any step through five batches of 8 (when the case has blocks, they learn in the third
/// and fourth only), each with its view, dropout mask and target rows, at changing rates.
async fn drive(step: &mut impl TrainStep, case: &StepCase) -> Driven {
    let data = &case.data;
    let everyone: Vec<usize> = (0..data.labels.len()).collect();
    let first = step.snapshot().await.unwrap();
    let mut rng = graft::train::rng::SplitMix64::new(5);
    let mut scores = vec![step.score(data, &everyone).await.unwrap()];
    for b in 0..5 {
        if case.blocks.is_some() && (b == 2 || b == 4) {
            step.set_blocks_learn(b == 2).unwrap();
        }
        step.set_learning_rates(Rates { head: 0.02 / (b + 1) as f64, blocks: 2e-3 });
        let samples: Vec<usize> = (0..8).map(|i| (b * 5 + i * 3) % data.labels.len()).collect();
        let hidden = case.config.hidden;
        let mask: Vec<f32> = (0..8 * hidden).map(|_| if rng.next_f32() < 0.2 { 0.0 } else { 1.25 }).collect();
        let target_rows: Vec<usize> = samples.iter().map(|&s| (s + b) % data.labels.len()).collect();
        let batch = Batch {
            samples: &samples,
            view: (!data.views.is_empty()).then(|| b % data.views.len()),
            dropout_mask: (hidden > 0).then_some(mask.as_slice()),
            target: data.target.as_ref().map(|_| TargetBatch { rows: &target_rows, lambda: 0.1 * b as f64 }),
        };
        let hits = step.train_batch(data, &batch).await.unwrap();
        assert_eq!(hits.is_some(), data.target.is_some(), "{}: domain hits only when adapting", case.name);
        scores.push(step.score(data, &everyone).await.unwrap());
    }
    let weights = step.snapshot().await.unwrap();
    step.restore(&first).unwrap();
    let restored = step.score(data, &everyone).await.unwrap();
    Driven { first, scores, weights, restored }
}

/// The GPU step gives the Candle step's scores after every batch and its weights, and both
/// restore a snapshot: `near` says how close the losses must be.
async fn steps_agree(context: &GpuContext, case: StepCase, near: fn(f32, f32) -> bool) {
    let mut cpu = candle_step(&case);
    let mut gpu = GpuStep::new(context.clone(), &candle_step(&case), &case.data, &case.config).await.unwrap();
    let (want, got) = (drive(&mut cpu, &case).await, drive(&mut gpu, &case).await);
    for (batch, (w, g)) in want.scores.iter().zip(&got.scores).enumerate() {
        println!("{}: after {batch} batches loss CPU {} GPU {}", case.name, w.loss, g.loss);
        assert!(near(g.loss, w.loss), "{} after {batch} batches: {} vs {}", case.name, g.loss, w.loss);
    }
    assert!(want.scores.first().unwrap().loss > want.scores.last().unwrap().loss, "{}: it learned", case.name);
    // Euclidean distances, as in `assert_blocks_moved_alike`: the GPU's weights differ from
    // the CPU's by far less than training moved them (a tensor that did not move: by nothing).
    let values = |w: &Tensor| w.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let distance = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f32>().sqrt();
    for (name, w) in &want.weights {
        let (w, g, initial) = (values(w), values(&got.weights[name]), values(&want.first[name]));
        let (moved, error) = (distance(&w, &initial), distance(&g, &w));
        assert!(error <= moved / 20.0 + 1e-5, "{}: {name} moved {moved}, GPU differs by {error}", case.name);
    }
    for driven in [&want, &got] {
        assert!(close(driven.restored.loss, driven.scores[0].loss), "{}: restored", case.name);
        assert_eq!(driven.restored.predicted, driven.scores[0].predicted, "{}: restored", case.name);
    }
}

/// The fallback step with a GPU attached trains there (the GPU step's scores, a WebGPU badge),
/// and its Candle step holds the weights of the last restore, from which a lost GPU's run goes on.
async fn the_fallback_step_follows_its_gpu(context: &GpuContext, case: &StepCase) {
    let mut gpu = GpuStep::new(context.clone(), &candle_step(case), &case.data, &case.config).await.unwrap();
    let mut fallback = FallbackStep::new(candle_step(case));
    fallback.use_gpu(context.clone(), &case.data, &case.config).await.unwrap();
    assert!(matches!(fallback.device(), TrainDevice::Webgpu { .. }), "{}", fallback.device());
    let (want, got) = (drive(&mut gpu, case).await, drive(&mut fallback, case).await);
    for (batch, (w, g)) in want.scores.iter().zip(&got.scores).enumerate() {
        assert!(close(g.loss, w.loss), "{} fallback after {batch} batches: {} vs {}", case.name, g.loss, w.loss);
    }
    let everyone: Vec<usize> = (0..case.data.labels.len()).collect();
    let kept = fallback.into_cpu().score(&case.data, &everyone).await.unwrap();
    assert!(close(kept.loss, got.restored.loss), "{}: the Candle step kept the restored weights", case.name);
}

/// The head-only cases of the step-level parity test: a hidden layer with dropout, a linear
/// head, augmented views, and an adapting run.
pub async fn the_candle_and_gpu_steps_agree_on_every_head_case(context: GpuContext) {
    let (inputs, labels) = blobs(8);
    let config = TrainConfig { hidden: 8, ..TrainConfig::default() };
    let plain = || TrainData::new(inputs.clone(), labels.clone(), abc());
    let views = (1..3).map(|k| (&inputs * (1.0 + 0.1 * k as f64)).unwrap()).collect();
    let target = Some((&inputs + 0.7).unwrap());
    let cases = [
        StepCase { name: "hidden", data: plain(), config: config.clone(), blocks: None },
        StepCase { name: "linear", data: plain(), config: TrainConfig { hidden: 0, ..config.clone() }, blocks: None },
        StepCase { name: "views", data: TrainData { views, ..plain() }, config: config.clone(), blocks: None },
        StepCase { name: "adapting", data: TrainData { target, ..plain() }, config, blocks: None },
    ];
    the_fallback_step_follows_its_gpu(&context, &cases[0]).await;
    for case in cases {
        steps_agree(&context, case, close).await;
    }
}

/// The step-level parity test with MobileNetV2's last three blocks before the head, frozen for
/// two batches, then learning.
pub async fn the_candle_and_gpu_steps_agree_on_fine_tuning_blocks(context: GpuContext) {
    let (inputs, labels) = boundary_activations(MOBILENET_SUFFIX.channels, 11);
    let data = TrainData::new(inputs, labels, abc());
    let config = TrainConfig { hidden: 8, ..TrainConfig::default() };
    let blocks = Some((random_backbone(), MOBILENET_SUFFIX.unfreeze));
    steps_agree(&context, StepCase { name: "blocks", data, config, blocks }, near).await;
}
