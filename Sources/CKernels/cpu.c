#include "CKernels.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

int tl_engine_variant = 0;

void tl_set_engine_variant(int on) { tl_engine_variant = on; }

/// 0 portable, 1 AVX2 + FMA, 2 AVX-512F as well; `TLHUB_KERNELS=portable|avx2` caps it (the
/// tests compare the levels, and benchmarks can pin one).
int tl_cpu_kernel_level(void) {
    static int cached = -1;
    if (cached < 0) {
        int level = 0;
#if TL_X86
        __builtin_cpu_init();
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) level = 1;
        if (level == 1 && __builtin_cpu_supports("avx512f")) level = 2;
#endif
        const char *choice = getenv("TLHUB_KERNELS");
        if (choice && strcmp(choice, "portable") == 0) level = 0;
        if (choice && strcmp(choice, "avx2") == 0 && level > 1) level = 1;
        cached = level;
    }
    return cached;
}

int tl_cpu_has_avx2_fma(void) { return tl_cpu_kernel_level() >= 1; }

int tl_cpu_has_avx512(void) { return tl_cpu_kernel_level() >= 2; }

void tl_bias_clamp(float *values, int pixels, int channels, const float *bias, float low, float high) {
    for (int p = 0; p < pixels; p++) {
        float *row = values + (size_t)p * channels;
        for (int c = 0; c < channels; c++) {
            float x = row[c] + (bias ? bias[c] : 0.0f);
            x = x < low ? low : x;
            row[c] = x > high ? high : x;
        }
    }
}
