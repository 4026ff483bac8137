//! The WGSL kernels, each beside its driver: the override constants and parameters a dispatch
//! needs, and its workgroup count. Drivers only describe calls ([`KernelCall`]); recording and
//! running them is [`super::program`]'s. Every kernel has a CPU twin and a parity test
//! (`tests/gpu.rs`).
//!
//! Inference (NHWC activations, channel counts multiples of 4, read as `vec4`):
//! [`pointwise`], [`depthwise`], [`conv3x3`], [`mean`]. Training (any shape, row-major):
//! [`matmul`], [`softmax_xent`], [`elementwise`], [`adamw`], and the unfrozen blocks' [`backward`].

pub mod adamw;
pub mod backward;
pub mod conv3x3;
pub mod depthwise;
pub mod elementwise;
pub mod matmul;
pub mod mean;
pub mod pointwise;
pub mod softmax_xent;

/// Workgroups of the 32x32-tile product kernels for a `rows x columns` output.
pub(crate) fn tile_workgroups(rows: usize, columns: usize) -> [u32; 3] {
    [columns.div_ceil(32) as u32, rows.div_ceil(32) as u32, 1]
}

/// `true`/`false` as a pipeline-overridable constant.
pub(crate) fn flag(on: bool) -> f64 {
    if on {
        1.0
    } else {
        0.0
    }
}

/// Every kernel, for the tests that read them all.
pub static ALL: [&crate::gpu::program::Kernel; 18] = [
    &adamw::KERNEL,
    &backward::ADD,
    &backward::BN_FOLD,
    &backward::BN_UNFOLD,
    &elementwise::COLUMN_SUM,
    &conv3x3::KERNEL,
    &depthwise::KERNEL,
    &backward::DEPTHWISE_GRAD_INPUT,
    &backward::DEPTHWISE_GRAD_TAPS,
    &elementwise::GATHER,
    &elementwise::MASK,
    &matmul::KERNEL,
    &mean::KERNEL,
    &pointwise::KERNEL,
    &backward::RELU6_GRAD,
    &elementwise::REVERSAL,
    &softmax_xent::KERNEL,
    &backward::SPREAD,
];

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::ALL;

    /// The shader's `struct Params` as naga lays it out: each member's name, type and offset,
    /// and the struct's size.
    fn shader_params(source: &str) -> (Vec<(String, &'static str, usize)>, usize) {
        let module = naga::front::wgsl::parse_str(source).expect("the shader parses");
        let (_, params) =
            module.types.iter().find(|(_, ty)| ty.name.as_deref() == Some("Params")).expect("struct Params");
        let naga::TypeInner::Struct { members, span } = &params.inner else { panic!("Params is not a struct") };
        let fields = members
            .iter()
            .map(|member| {
                let ty = match module.types[member.ty].inner {
                    naga::TypeInner::Scalar(naga::Scalar::U32) => "u32",
                    naga::TypeInner::Scalar(naga::Scalar::F32) => "f32",
                    ref other => panic!("a Params field of type {other:?}"),
                };
                (member.name.clone().unwrap_or_default(), ty, member.offset as usize)
            })
            .collect();
        (fields, *span as usize)
    }

    /// Each kernel's Rust parameters have the names, types, offsets and size of its WGSL
    /// `struct Params`: a field added, moved or retyped on one side only fails here.
    #[test]
    fn every_kernels_params_mirror_its_wgsl_struct() {
        for kernel in ALL {
            let (fields, size) = shader_params(kernel.source);
            let rust: Vec<(String, &str, usize)> =
                kernel.params.fields.iter().map(|&(name, ty, offset)| (name.to_string(), ty, offset)).collect();
            assert_eq!(rust, fields, "{}: the Rust Params fields differ from the shader's", kernel.name);
            assert_eq!(kernel.params.size, size, "{}: the Rust Params size differs from the shader's", kernel.name);
        }
    }

    #[test]
    fn every_kernel_is_listed_once() {
        let mut names: Vec<&str> = ALL.iter().map(|k| k.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), ALL.len());
        // The running tree (a build in the shared target folder may come from another clone).
        let root = std::env::var_os("CARGO_MANIFEST_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
        let shaders = std::fs::read_dir(root.join("src/gpu/kernels")).unwrap();
        let on_disk =
            shaders.filter(|e| e.as_ref().is_ok_and(|e| e.path().extension().is_some_and(|x| x == "wgsl"))).count();
        assert_eq!(on_disk, ALL.len(), "a .wgsl file beside the drivers is missing from ALL");
    }
}
