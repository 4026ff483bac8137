//! The benchmark page's handle on the engine (`cargo xtask bench`, tests/bench/page): the same
//! CPU executor the model worker runs, on inputs the page hands over as f32 arrays.

use candle_core::{Device, Tensor};
use graft::embed::FeatureExtractor;
use graft::exec::CpuExecutor;
use graft::manifest::ModelManifest;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;

#[wasm_bindgen]
pub struct BenchBackbone {
    /// The extractor the worker runs: its Candle backbone gives the "before" figures.
    extractor: FeatureExtractor,
}

#[wasm_bindgen]
impl BenchBackbone {
    /// Checks and loads the weights described by the manifest JSON.
    #[wasm_bindgen(constructor)]
    pub fn new(manifest_json: &str, weights: Vec<u8>) -> Result<BenchBackbone, JsError> {
        let manifest = ModelManifest::from_json(manifest_json)?;
        Ok(Self { extractor: FeatureExtractor::load(&manifest, weights, &Device::Cpu)? })
    }

    /// Features `(batch, 1280)`, flat, of preprocessed inputs `(batch, 3, S, S)`, flat; by the
    /// fast path, or by the Candle path when `candle` is set.
    pub fn embed(&self, input: &[f32], batch: usize, candle: bool) -> Result<Vec<f32>, JsError> {
        let x = self.batch(input, batch)?;
        let features =
            if candle { self.extractor.backbone().forward_features(&x)? } else { self.cpu()?.features_now(&x)? };
        Ok(features.flatten_all()?.to_vec1()?)
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
#[wasm_bindgen]
pub fn wasm_memory_bytes() -> f64 {
    wasm_bindgen::memory()
        .dyn_into::<js_sys::WebAssembly::Memory>()
        .map(|m| m.buffer().unchecked_into::<js_sys::ArrayBuffer>().byte_length() as f64)
        .unwrap_or(0.0)
}

fn main() {}
