// Sigmoid and swish (x · sigmoid(x)) over float arrays: EfficientNet's activation runs after
// nearly every convolution, and the scalar `expf` made it cost more than the convolutions.
//
// exp(x) = 2ⁿ · p(r), n = round(x · log₂e), r = x − n · ln 2 (ln 2 split in two so r is exact to
// float precision), p the degree-6 Taylor polynomial: |r| ≤ 0.347, so the truncation is below
// 1.3e-7 relative, about one float ulp. Inputs are clamped to where exp stays finite.
#include "CKernels.h"
#include "internal.h"

#include <math.h>

#define EXP_MAX 88.3762626647949f
#define EXP_MIN -87.3365447504f
#define LOG2E 1.44269504088896341f
#define LN2_HI 0.693359375f
#define LN2_LO -2.12194440e-4f

static void sigmoid_portable(float *values, int count, int swish) {
    for (int i = 0; i < count; i++) {
        float x = values[i], s = 1.0f / (1.0f + expf(-x));
        values[i] = swish ? x * s : s;
    }
}

#if TL_X86
TL_AVX2 static inline __m256 exp_avx2(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(EXP_MIN)), _mm256_set1_ps(EXP_MAX));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_HI), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(LN2_LO), r);
    __m256 p = _mm256_set1_ps(1.0f / 720);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    __m256i exponent = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(exponent));
}

TL_AVX2 static void sigmoid_avx2(float *values, int count, int swish) {
    const __m256 one = _mm256_set1_ps(1.0f);
    int i = 0;
    for (; i + 8 <= count; i += 8) {
        __m256 x = _mm256_loadu_ps(values + i);
        __m256 s = _mm256_div_ps(one, _mm256_add_ps(one, exp_avx2(_mm256_sub_ps(_mm256_setzero_ps(), x))));
        _mm256_storeu_ps(values + i, swish ? _mm256_mul_ps(x, s) : s);
    }
    sigmoid_portable(values + i, count - i, swish);
}

TL_AVX512 static inline __m512 exp_avx512(__m512 x) {
    x = _mm512_min_ps(_mm512_max_ps(x, _mm512_set1_ps(EXP_MIN)), _mm512_set1_ps(EXP_MAX));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_HI), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(LN2_LO), r);
    __m512 p = _mm512_set1_ps(1.0f / 720);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, n);
}

TL_AVX512 static void sigmoid_avx512(float *values, int count, int swish) {
    const __m512 one = _mm512_set1_ps(1.0f);
    for (int i = 0; i < count; i += 16) {
        __mmask16 mask = count - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (count - i)) - 1);
        __m512 x = _mm512_maskz_loadu_ps(mask, values + i);
        __m512 s = _mm512_div_ps(one, _mm512_add_ps(one, exp_avx512(_mm512_sub_ps(_mm512_setzero_ps(), x))));
        _mm512_mask_storeu_ps(values + i, mask, swish ? _mm512_mul_ps(x, s) : s);
    }
}
#endif

void tl_sigmoid_level(int level, float *values, int count, int swish) {
    level = tl_min(level, tl_cpu_kernel_level());
#if TL_X86
    if (level >= 2) { sigmoid_avx512(values, count, swish); return; }
    if (level >= 1) { sigmoid_avx2(values, count, swish); return; }
#endif
    sigmoid_portable(values, count, swish);
}

void tl_sigmoid(float *values, int count, int swish) { tl_sigmoid_level(tl_cpu_kernel_level(), values, count, swish); }
