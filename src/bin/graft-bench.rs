//! `graft-bench`: the native half of `cargo xtask bench` (see xtask/src/bench.rs).
//!
//! - `graft-bench prepare --out FILE --count N IMAGE...`: preprocesses the first N images that
//!   decode into one little-endian f32 file `(N, 3, 224, 224)`, the inputs every engine in the
//!   benchmark runs on.
//! - `graft-bench native --inputs FILE --out JSON --features FILE`: times the backbone's
//!   forward pass (the CPU executor on one thread and on every core, and the Candle path) at
//!   batch 1 and 8, measures the heap peak of one forward pass and profiles it per kind of
//!   unit, and writes the fast path's features for the equality check.

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::path::{Path, PathBuf};
    use std::process::ExitCode;
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    use std::time::Instant;

    use candle_core::{Device, Tensor};
    use clap::{Parser, Subcommand};
    use graft::backbone::Architecture;
    use graft::embed::{block_on, FeatureExtractor};
    use graft::gpu::BackendChoice;
    use graft::manifest::{manifest_file, ModelManifest};
    use graft::preprocess::{decode_image, image_to_chw, InputSpec};
    use serde_json::json;

    /// The system allocator, counting live bytes and their high-water mark.
    struct CountingAlloc;
    static LIVE: AtomicUsize = AtomicUsize::new(0);
    static PEAK: AtomicUsize = AtomicUsize::new(0);

    unsafe impl GlobalAlloc for CountingAlloc {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let live = LIVE.fetch_add(layout.size(), Relaxed) + layout.size();
            PEAK.fetch_max(live, Relaxed);
            System.alloc(layout)
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            LIVE.fetch_sub(layout.size(), Relaxed);
            System.dealloc(ptr, layout)
        }
    }

    #[global_allocator]
    static ALLOC: CountingAlloc = CountingAlloc;

    #[derive(Parser)]
    #[command(name = "graft-bench", about = "The native half of `cargo xtask bench`")]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    #[derive(Subcommand)]
    enum Command {
        /// Preprocess images into the shared input file.
        Prepare {
            #[arg(long)]
            out: PathBuf,
            #[arg(long, default_value_t = 24)]
            count: usize,
            images: Vec<PathBuf>,
        },
        /// Time Graft's backbone natively.
        Native {
            #[arg(long)]
            inputs: PathBuf,
            #[arg(long)]
            model_dir: PathBuf,
            #[arg(long)]
            out: PathBuf,
            #[arg(long)]
            features: PathBuf,
        },
    }

    pub fn main() -> ExitCode {
        let result = match Cli::parse().command {
            Command::Prepare { out, count, images } => prepare(&out, count, &images),
            Command::Native { inputs, model_dir, out, features } => native(&inputs, &model_dir, &out, &features),
        };
        match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("graft-bench: {message}");
                ExitCode::FAILURE
            }
        }
    }

    fn prepare(out: &Path, count: usize, images: &[PathBuf]) -> Result<(), String> {
        let spec = InputSpec::imagenet();
        let mut data = Vec::new();
        let mut used = 0;
        for path in images {
            let Ok(bytes) = std::fs::read(path) else { continue };
            let Ok(image) = decode_image(&path.display().to_string(), &bytes) else {
                continue;
            };
            data.extend(image_to_chw(&image, &spec).iter().flat_map(|v| v.to_le_bytes()));
            used += 1;
            if used == count {
                break;
            }
        }
        if used < count {
            return Err(format!("only {used} of {count} images decoded"));
        }
        std::fs::write(out, data).map_err(|e| format!("{}: {e}", out.display()))
    }

    fn read_f32(path: &Path) -> Result<Vec<f32>, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect())
    }

    /// Median and 90th percentile of per-image milliseconds.
    fn summary(mut per_image_ms: Vec<f64>) -> serde_json::Value {
        per_image_ms.sort_by(f64::total_cmp);
        let at = |q: f64| per_image_ms[((per_image_ms.len() - 1) as f64 * q).round() as usize];
        json!({ "median_ms": at(0.5), "p90_ms": at(0.9), "runs": per_image_ms.len() })
    }

    /// A forward pass under test: features of a batch.
    type Forward<'a> = &'a dyn Fn(&Tensor) -> Result<Tensor, String>;

    /// Times `forward` over the inputs in batches: per-image milliseconds of each batch,
    /// after one warm-up batch.
    fn time_batches(inputs: &[Tensor], batch: usize, forward: Forward) -> Result<serde_json::Value, String> {
        let batches: Vec<Tensor> = inputs
            .chunks(batch)
            .filter(|c| c.len() == batch)
            .map(|c| Tensor::cat(c, 0).map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?;
        let first = batches.first().ok_or_else(|| format!("fewer inputs than one batch of {batch}"))?;
        forward(first)?;
        let times = batches
            .iter()
            .map(|b| {
                let start = Instant::now();
                forward(b)?;
                Ok(start.elapsed().as_secs_f64() * 1e3 / batch as f64)
            })
            .collect::<Result<_, String>>()?;
        Ok(summary(times))
    }

    /// The GPU executor on the native adapter (Vulkan), batch 1, 8 and 32 after the first run
    /// (whose time includes compiling the pipelines), and its features against the CPU's; or
    /// why there is none.
    fn native_gpu(
        extractor: &FeatureExtractor,
        images: &[Tensor],
        cpu_features: &[f32],
    ) -> Result<serde_json::Value, String> {
        let status = match block_on(extractor.select_backend(BackendChoice::Webgpu)) {
            Ok(status) => status,
            Err(e) => return Ok(json!({ "unavailable": e.to_string() })),
        };
        let gpu = |x: &Tensor| block_on(extractor.embed_tensor(x)).map_err(|e| e.to_string());
        let started = Instant::now();
        gpu(&images[0])?;
        let first_run_ms = started.elapsed().as_secs_f64() * 1e3;
        let cycled: Vec<Tensor> = images.iter().cycle().take(64).cloned().collect();
        let mut features = Vec::new();
        for batch in images.chunks(8).filter(|c| c.len() == 8) {
            let x = Tensor::cat(batch, 0).map_err(|e| e.to_string())?;
            features.extend(gpu(&x)?.flatten_all().and_then(|t| t.to_vec1::<f32>()).map_err(|e| e.to_string())?);
        }
        let diff = features.iter().zip(cpu_features).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        let report = json!({
            "adapter": status.description,
            "first_run_ms": first_run_ms,
            "batch1": time_batches(images, 1, &gpu)?,
            "batch8": time_batches(images, 8, &gpu)?,
            "batch32": time_batches(&cycled, 32, &gpu)?,
            "max_abs_diff_vs_cpu": diff,
        });
        if extractor.executor().status() != status {
            return Err(format!("the GPU failed during the benchmark: {:?}", extractor.executor().status()));
        }
        Ok(report)
    }

    fn native(inputs: &Path, model_dir: &Path, out: &Path, features_out: &Path) -> Result<(), String> {
        let manifest_path = model_dir.join(manifest_file(Architecture::DEFAULT));
        let manifest_text = std::fs::read_to_string(manifest_path).map_err(|e| e.to_string())?;
        let manifest = ModelManifest::from_json(&manifest_text).map_err(|e| e.to_string())?;
        let weights = std::fs::read(model_dir.join(&manifest.weights)).map_err(|e| e.to_string())?;
        let mut extractor = FeatureExtractor::load(&manifest, weights, &Device::Cpu).map_err(|e| e.to_string())?;
        let backbone = extractor.backbone().clone();
        let cpu = extractor.cpu_executor_mut();
        // Natively the CPU executor spreads a batch's images over every core by default; the
        // like-for-like figures use one thread, the all-core ones come last.
        let cores = cpu.threads();
        cpu.set_threads(1);
        let size = manifest.input.crop as usize;
        let data = read_f32(inputs)?;
        let images: Vec<Tensor> = data
            .chunks_exact(3 * size * size)
            .map(|c| Tensor::from_slice(c, (1, 3, size, size), &Device::Cpu).map_err(|e| e.to_string()))
            .collect::<Result<_, _>>()?;
        if images.len() < 8 {
            return Err(format!("{}: {} images, at least 8 needed", inputs.display(), images.len()));
        }
        let fast = |x: &Tensor| cpu.features_now(x).map_err(|e| e.to_string());
        let candle = |x: &Tensor| backbone.forward_features(x).map_err(|e| e.to_string());

        // Heap high-water mark of one batch-8 forward pass above what was live before it; the
        // fast path's first call, so its reused buffers are counted.
        let batch8 = Tensor::cat(&images[..8], 0).map_err(|e| e.to_string())?;
        let peak = |forward: Forward| -> Result<usize, String> {
            let base = LIVE.load(Relaxed);
            PEAK.store(base, Relaxed);
            forward(&batch8)?;
            Ok(PEAK.load(Relaxed) - base)
        };
        let (fast_peak, candle_peak) = (peak(&fast)?, peak(&candle)?);

        let mut features = Vec::new();
        for image in &images {
            features.extend(fast(image)?.flatten_all().and_then(|t| t.to_vec1::<f32>()).map_err(|e| e.to_string())?);
        }
        std::fs::write(features_out, features.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>())
            .map_err(|e| e.to_string())?;

        let clock_origin = Instant::now();
        let clock = || clock_origin.elapsed().as_secs_f64() * 1e3;
        let profile = cpu.profile(&batch8, &clock).map_err(|e| e.to_string())?;
        let profile: serde_json::Map<String, serde_json::Value> =
            profile.into_iter().map(|(kind, ms)| (kind.to_string(), (ms / 8.0).into())).collect();
        let mut report = json!({
            "engine": "graft-native",
            "threads": 1,
            "images": images.len(),
            "fast": {
                "batch1": time_batches(&images, 1, &fast)?,
                "batch8": time_batches(&images, 8, &fast)?,
                "peak_forward_bytes_batch8": fast_peak,
                "profile_ms_per_image": profile,
            },
            "candle": {
                "batch1": time_batches(&images[..8], 1, &candle)?,
                "peak_forward_bytes_batch8": candle_peak,
            },
        });
        cpu.set_threads(cores);
        let fast = |x: &Tensor| cpu.features_now(x).map_err(|e| e.to_string());
        report["fast_all_cores"] = json!({
            "threads": cores,
            "batch1": time_batches(&images, 1, &fast)?,
            "batch8": time_batches(&images, 8, &fast)?,
        });
        report["webgpu"] = native_gpu(&extractor, &images, &features)?;
        std::fs::write(out, serde_json::to_string_pretty(&report).map_err(|e| e.to_string())?)
            .map_err(|e| e.to_string())?;
        println!("{report}");
        Ok(())
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn main() -> std::process::ExitCode {
    native::main()
}

#[cfg(target_arch = "wasm32")]
fn main() {}
