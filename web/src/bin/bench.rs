//! The benchmark page's handle on the engine (`cargo xtask bench`, tests/bench/page): the same
//! CPU and GPU executors the model worker runs, on inputs the page hands over as f32 arrays; and
//! the folded plan, from which the page builds the TensorFlow.js reference network, so that
//! every engine runs the same weights.

use std::rc::Rc;

use candle_core::{Device, Tensor};
use graft::embed::FeatureExtractor;
use graft::exec::plan::Unit;
use graft::exec::CpuExecutor;
use graft::gpu::BackendChoice;
use graft::kernels::Window;
use graft::manifest::ModelManifest;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

#[wasm_bindgen]
pub struct BenchBackbone {
    /// The extractor the worker runs: its Candle backbone gives the "before" figures. Shared
    /// with the promises of the GPU methods.
    extractor: Rc<FeatureExtractor>,
}

#[wasm_bindgen]
impl BenchBackbone {
    /// Checks and loads the weights described by the manifest JSON.
    #[wasm_bindgen(constructor)]
    pub fn new(manifest_json: &str, weights: Vec<u8>) -> Result<BenchBackbone, JsError> {
        let manifest = ModelManifest::from_json(manifest_json)?;
        Ok(Self { extractor: Rc::new(FeatureExtractor::load(&manifest, weights, &Device::Cpu)?) })
    }

    /// Features `(batch, 1280)`, flat, of preprocessed inputs `(batch, 3, S, S)`, flat; by the
    /// fast path, or by the Candle path when `candle` is set.
    pub fn embed(&self, input: &[f32], batch: usize, candle: bool) -> Result<Vec<f32>, JsError> {
        let x = self.batch(input, batch)?;
        let features =
            if candle { self.extractor.backbone().forward_features(&x)? } else { self.cpu()?.features_now(&x)? };
        Ok(features.flatten_all()?.to_vec1()?)
    }

    /// Moves the extractor to WebGPU (any adapter); resolves to the badge text, e.g.
    /// `"WebGPU · <adapter>"`, or rejects with the reason it cannot run there.
    pub fn use_webgpu(&self) -> js_sys::Promise {
        let extractor = Rc::clone(&self.extractor);
        wasm_bindgen_futures::future_to_promise(async move {
            let status =
                extractor.select_backend(BackendChoice::Webgpu).await.map_err(|e| JsError::new(&e.to_string()))?;
            Ok(status.description.into())
        })
    }

    /// Features of preprocessed inputs by the backend in use (WebGPU after `use_webgpu`): a
    /// promise of a `Float32Array` `(batch, 1280)`, flat.
    pub fn embed_async(&self, input: &[f32], batch: usize) -> Result<js_sys::Promise, JsError> {
        let x = self.batch(input, batch)?;
        let extractor = Rc::clone(&self.extractor);
        Ok(wasm_bindgen_futures::future_to_promise(async move {
            let status = extractor.executor().status();
            let features = extractor.embed_tensor(&x).await.map_err(|e| JsError::new(&e.to_string()))?;
            if extractor.executor().status() != status {
                return Err(
                    JsError::new(&format!("the backend changed mid-run: {:?}", extractor.executor().status())).into()
                );
            }
            let values: Vec<f32> =
                features.flatten_all().and_then(|f| f.to_vec1()).map_err(|e| JsError::new(&e.to_string()))?;
            Ok(js_sys::Float32Array::from(values.as_slice()).into())
        }))
    }

    /// The folded plan's layout as JSON: `[{residual, units: [{kind, stride, relu, in, out,
    /// weight: [offset, len], bias: [offset, len]}]}]`, offsets into [`Self::plan_weights`].
    /// Weights are laid out as TensorFlow.js takes them: `conv3x3` `[3, 3, in, out]`,
    /// `pointwise` `[1, 1, in, out]`, `depthwise` `[3, 3, channels, 1]`.
    pub fn plan_layout(&self) -> String {
        let mut offset = 0usize;
        let mut span = |len: usize| {
            let at = offset;
            offset += len;
            serde_json::json!([at, len])
        };
        let blocks: Vec<serde_json::Value> = self
            .extractor
            .cpu_executor()
            .plan()
            .blocks()
            .iter()
            .map(|block| {
                let units: Vec<serde_json::Value> = block
                    .units
                    .iter()
                    .map(|unit| {
                        let (kind, window, relu, inputs, weight, bias) = describe_unit(unit);
                        serde_json::json!({
                            "kind": kind, "stride": window.stride, "kernel": window.kernel, "pad": window.pad,
                            "relu": relu, "in": inputs, "out": bias.len(),
                            "weight": span(weight.len()), "bias": span(bias.len()),
                        })
                    })
                    .collect();
                serde_json::json!({ "residual": block.residual, "units": units })
            })
            .collect();
        serde_json::Value::Array(blocks).to_string()
    }

    /// Every unit's folded weight then bias, in plan order (see [`Self::plan_layout`]).
    pub fn plan_weights(&self) -> Vec<f32> {
        let plan = self.extractor.cpu_executor().plan();
        let mut all = Vec::new();
        for unit in plan.blocks().iter().flat_map(|b| &b.units) {
            let (.., weight, bias) = describe_unit(unit);
            all.extend_from_slice(weight);
            all.extend_from_slice(bias);
        }
        all
    }

    /// `{"unit kind": milliseconds per image}` of the fast path over the inputs, as JSON.
    pub fn profile(&self, input: &[f32], batch: usize) -> Result<String, JsError> {
        let x = self.batch(input, batch)?;
        let performance = js_sys::global()
            .dyn_into::<web_sys::Window>()
            .ok()
            .and_then(|w| w.performance())
            .ok_or_else(|| JsError::new("no performance clock"))?;
        let clock = move || performance.now();
        let totals = self.cpu()?.profile(&x, &clock)?;
        let per_image: serde_json::Map<String, serde_json::Value> =
            totals.into_iter().map(|(kind, ms)| (kind.to_string(), (ms / batch as f64).into())).collect();
        Ok(serde_json::Value::Object(per_image).to_string())
    }
}

/// `(kind, window, relu6, input channels, weight, bias)` of a folded unit.
fn describe_unit(unit: &Unit) -> (&'static str, Window, bool, usize, &[f32], &[f32]) {
    match unit {
        Unit::Conv3x3 { window, in_channels, weight, bias, relu } => {
            ("conv3x3", *window, *relu, *in_channels, weight, bias)
        }
        Unit::Pointwise { in_channels, weight, bias, relu } => {
            ("pointwise", Window { kernel: 1, stride: 1, pad: 0 }, *relu, *in_channels, weight, bias)
        }
        Unit::Depthwise { window, taps, bias } => ("depthwise", *window, true, bias.len(), taps, bias),
    }
}

impl BenchBackbone {
    /// The CPU executor (the benchmark times it, whatever the worker would pick).
    fn cpu(&self) -> Result<&CpuExecutor, JsError> {
        Ok(self.extractor.cpu_executor())
    }

    /// The flat inputs as a `(batch, 3, S, S)` tensor.
    fn batch(&self, input: &[f32], batch: usize) -> Result<Tensor, JsError> {
        let size = self.extractor.input_spec().crop as usize;
        Ok(Tensor::from_slice(input, (batch, 3, size, size), &Device::Cpu)?)
    }
}

/// Bytes of this module's linear memory (it only grows: the high-water mark).
/// The app's probe for relaxed SIMD ([`graft::kernels::RELAXED_SIMD_PROBE`]): the page times
/// the relaxed build where this validates.
#[wasm_bindgen]
pub fn relaxed_simd_probe() -> Vec<u8> {
    graft::kernels::RELAXED_SIMD_PROBE.to_vec()
}

#[wasm_bindgen]
pub fn wasm_memory_bytes() -> f64 {
    wasm_bindgen::memory()
        .dyn_into::<js_sys::WebAssembly::Memory>()
        .map(|m| m.buffer().unchecked_into::<js_sys::ArrayBuffer>().byte_length() as f64)
        .unwrap_or(0.0)
}

fn main() {}
