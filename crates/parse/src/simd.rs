//! What the AVX2 classifiers share.

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
