//! Hot loops compiled twice: for the baseline CPU, and for AVX2 with fused
//! multiply-add, the second chosen at run time when the CPU has them. A
//! kernel is a [`Kernel`]; [`run`] picks its version. The loops are plain
//! Rust over small fixed-size arrays, which the compiler turns into vector
//! instructions of the width it is allowed.

use linfa::Float;

/// A loop worth compiling for wide vectors.
pub(super) trait Kernel {
    /// What it returns.
    type Output;

    /// Runs it; with `FUSED`, `a * b + c` is one fused multiply-add (see
    /// [`mul_add`]). Implementations are `#[inline(always)]`, so that they
    /// are compiled into each version.
    fn run<const FUSED: bool>(self) -> Self::Output;
}

/// Runs `kernel` in the widest version the CPU supports.
pub(super) fn run<K: Kernel>(kernel: K) -> K::Output {
    #[cfg(target_arch = "x86_64")]
    if wide_vectors() {
        // SAFETY: the CPU has AVX2 and FMA (checked at run time).
        return unsafe { run_wide(kernel) };
    }
    kernel.run::<false>()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn run_wide<K: Kernel>(kernel: K) -> K::Output {
    kernel.run::<true>()
}

/// Whether the CPU has AVX2 and FMA, checked once.
#[cfg(target_arch = "x86_64")]
fn wide_vectors() -> bool {
    static WIDE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *WIDE.get_or_init(|| {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    })
}

/// `a * b + c`, fused (one rounding) when `FUSED`. Without FMA in the
/// instruction set, a fused multiply-add is a slow library call: the
/// baseline version multiplies and adds.
#[inline(always)]
pub(super) fn mul_add<F: Float, const FUSED: bool>(a: F, b: F, c: F) -> F {
    match FUSED {
        true => num_traits::Float::mul_add(a, b, c),
        false => a * b + c,
    }
}

/// The sum of `values` in f64, added `L` lanes at a time in `F` (so that
/// it vectorises) and the lanes then in f64.
#[inline(always)]
pub(super) fn sum<F: Float, const L: usize>(values: &[F]) -> f64 {
    let mut lanes = [F::zero(); L];
    let mut chunks = values.chunks_exact(L);
    for chunk in &mut chunks {
        for (lane, v) in lanes.iter_mut().zip(chunk) {
            *lane += *v;
        }
    }
    let tail: f64 = chunks.remainder().iter().map(|v| to_f64(*v)).sum();
    lanes.iter().map(|v| to_f64(*v)).sum::<f64>() + tail
}

/// `v` as f64 (exact for f32 and f64).
#[inline(always)]
pub(super) fn to_f64<F: Float>(v: F) -> f64 {
    v.to_f64().unwrap_or(f64::NAN)
}
