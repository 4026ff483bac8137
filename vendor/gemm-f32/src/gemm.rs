// Upstream: `gemm_common::gemm_def!(f32, 2);`. The macro is expanded here by hand so that
// `init_gemm_fn` can honour `GRAFT_GEMM_KERNEL` (see GRAFT.md); the rest is the macro's text.
pub mod f32 {
    type T = f32;

    type GemmTy = unsafe fn(
        usize,
        usize,
        usize,
        *mut T,
        isize,
        isize,
        bool,
        *const T,
        isize,
        isize,
        *const T,
        isize,
        isize,
        T,
        T,
        bool,
        bool,
        bool,
        gemm_common::Parallelism,
    );

    /// The kernel family forced by `GRAFT_GEMM_KERNEL` (`portable`, or `fma`/`avx2` where the
    /// processor has it), so that tests can run the same products on both x86 paths.
    #[cfg(all(feature = "std", any(target_arch = "x86", target_arch = "x86_64")))]
    fn forced_gemm_fn() -> Option<GemmTy> {
        match std::env::var("GRAFT_GEMM_KERNEL").ok()?.as_str() {
            "portable" | "scalar" => Some(scalar::gemm_basic),
            "fma" | "avx2" if gemm_common::feature_detected!("fma") => Some(fma::gemm_basic),
            _ => None,
        }
    }

    #[cfg(not(all(feature = "std", any(target_arch = "x86", target_arch = "x86_64"))))]
    fn forced_gemm_fn() -> Option<GemmTy> {
        None
    }

    #[inline]
    fn init_gemm_fn() -> GemmTy {
        if let Some(forced) = forced_gemm_fn() {
            return forced;
        }
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        {
            #[cfg(feature = "x86-v4")]
            if gemm_common::feature_detected!("avx512f") {
                return avx512f::gemm_basic;
            }
            if gemm_common::feature_detected!("fma") {
                fma::gemm_basic
            } else {
                scalar::gemm_basic
            }
        }

        #[cfg(target_arch = "aarch64")]
        {
            if gemm_common::feature_detected!("neon") {
                #[cfg(feature = "experimental-apple-amx")]
                if gemm_common::cache::HasAmx::get() {
                    return amx::gemm_basic;
                }
                neon::gemm_basic
            } else {
                scalar::gemm_basic
            }
        }

        #[cfg(target_arch = "wasm32")]
        {
            if gemm_common::feature_detected!("simd128") {
                simd128::gemm_basic
            } else {
                scalar::gemm_basic
            }
        }

        #[cfg(not(any(target_arch = "x86", target_arch = "x86_64", target_arch = "aarch64", target_arch = "wasm32",)))]
        {
            scalar::gemm_basic
        }
    }

    static GEMM_PTR: ::core::sync::atomic::AtomicPtr<()> = ::core::sync::atomic::AtomicPtr::new(::core::ptr::null_mut());

    #[inline(never)]
    fn init_gemm_ptr() -> GemmTy {
        let gemm_fn = init_gemm_fn();
        GEMM_PTR.store(gemm_fn as *mut (), ::core::sync::atomic::Ordering::Relaxed);
        gemm_fn
    }

    #[inline(always)]
    pub fn get_gemm_fn() -> GemmTy {
        let mut gemm_fn = GEMM_PTR.load(::core::sync::atomic::Ordering::Relaxed);
        if gemm_fn.is_null() {
            gemm_fn = init_gemm_ptr() as *mut ();
        }
        unsafe { ::core::mem::transmute(gemm_fn) }
    }

    gemm_common::__inject_mod!(scalar, f32, 1, Scalar, false);

    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    gemm_common::__inject_mod!(fma, f32, 4 * 2, V3, false);
    #[cfg(all(feature = "x86-v4", any(target_arch = "x86", target_arch = "x86_64")))]
    gemm_common::__inject_mod!(avx512f, f32, 8 * 2, V4, false);

    #[cfg(target_arch = "aarch64")]
    gemm_common::__inject_mod!(neon, f32, 2 * 2, Scalar, false);
    #[cfg(target_arch = "aarch64")]
    #[cfg(feature = "experimental-apple-amx")]
    gemm_common::__inject_mod!(amx, f32, 8 * 2, Scalar, true);

    #[cfg(target_arch = "wasm32")]
    gemm_common::__inject_mod!(simd128, f32, 2 * 2, Scalar, false);
}
