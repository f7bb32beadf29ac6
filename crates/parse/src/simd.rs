//! What the vector classifiers share.

/// Whether the processor runs the AVX2 classifiers, which are compiled for AVX2 and for the bit
/// instructions of the same generation that their mask arithmetic relies on: `popcnt`, `lzcnt`,
/// BMI1's `tzcnt` and `blsr` (without which counting and finding bits take several instructions
/// each) and PCLMUL (the string mask of stage 1). Every processor with AVX2 has them; the check
/// is of each all the same.
/// The answer is worked out once and kept, so that asking costs one load (the email check asks
/// for every address).
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) fn vector_runs() -> bool {
    static KNOWN: Known = Known::new();
    KNOWN.get(|| {
        std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("bmi1")
            && std::arch::is_x86_feature_detected!("lzcnt")
            && std::arch::is_x86_feature_detected!("popcnt")
            && std::arch::is_x86_feature_detected!("pclmulqdq")
    })
}

/// Whether the processor runs the AVX-512 classifiers: those of [`vector_runs`], and AVX-512's
/// foundation and byte and word instructions (AVX-512F and AVX-512BW), which classify a chunk of
/// 64 bytes in one register and compare straight into 64-bit masks. Worked out once and kept.
#[cfg(target_arch = "x86_64")]
#[inline]
pub(crate) fn wide_vector_runs() -> bool {
    static KNOWN: Known = Known::new();
    KNOWN.get(|| {
        vector_runs()
            && std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
    })
}

/// An answer about the processor, worked out at the first question and kept.
#[cfg(target_arch = "x86_64")]
struct Known(std::sync::atomic::AtomicU8);

#[cfg(target_arch = "x86_64")]
impl Known {
    const fn new() -> Known {
        // 0: not yet known; 1: no; 2: yes.
        Known(std::sync::atomic::AtomicU8::new(0))
    }

    #[inline]
    fn get(&self, detect: impl FnOnce() -> bool) -> bool {
        use std::sync::atomic::Ordering;
        match self.0.load(Ordering::Relaxed) {
            0 => {
                let yes = detect();
                self.0.store(1 + u8::from(yes), Ordering::Relaxed);
                yes
            }
            known => known == 2,
        }
    }
}

/// Inside an AVX2 function (and an `unsafe` block): loads the two 32-byte halves of `$chunk`, a
/// `&[u8; 64]`, and defines over them `$splat(c)` (every byte `c`), `$bits(&|v| test)` (the
/// halves' movemasks of a byte-wise test, as one 64-bit mask: bit `i` for byte `i`) and
/// `$within(x, low, span)` (the unsigned test `x - low <= span`, for letter and digit ranges).
/// A macro rather than functions: the intrinsics inline only into code compiled for AVX2, which
/// the closures defined here are, as part of the function that expands it.
macro_rules! avx2_chunk {
    ($chunk:expr, $splat:ident, $bits:ident, $within:ident) => {
        let p = $chunk.as_ptr().cast::<__m256i>();
        let (lo, hi) = (_mm256_loadu_si256(p), _mm256_loadu_si256(p.add(1)));
        let $splat = |c: u8| _mm256_set1_epi8(c as i8);
        let $bits = |test: &dyn Fn(__m256i) -> __m256i| {
            let low = _mm256_movemask_epi8(test(lo)) as u32;
            let high = _mm256_movemask_epi8(test(hi)) as u32;
            u64::from(low) | u64::from(high) << 32
        };
        let $within = |x: __m256i, low: u8, span: u8| {
            let t = _mm256_sub_epi8(x, $splat(low));
            _mm256_cmpeq_epi8(_mm256_min_epu8(t, $splat(span)), t)
        };
    };
}

pub(crate) use avx2_chunk;

/// `x`, through a barrier the optimiser cannot see through, without leaving its register: for
/// bit masks made by movemask, which the optimiser, left to see through them, rebuilds from the
/// compare vectors byte by byte (and which `std::hint::black_box` sends through memory).
#[inline(always)]
pub(crate) fn opaque(x: u64) -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        let mut x = x;
        // SAFETY: the template is empty: no instruction runs, and the register keeps its value.
        unsafe {
            std::arch::asm!("/* {0} */", inout(reg) x, options(pure, nomem, nostack, preserves_flags));
        }
        x
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        std::hint::black_box(x)
    }
}
