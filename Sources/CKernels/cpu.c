#include "CKernels.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

int tl_cpu_has_avx2_fma(void) {
    static int cached = -1;
    if (cached < 0) {
        int supported = 0;
#if TL_X86
        __builtin_cpu_init();
        supported = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
        // TLHUB_KERNELS=portable forces the portable kernels (tests compare both).
        const char *choice = getenv("TLHUB_KERNELS");
        if (choice && strcmp(choice, "portable") == 0) supported = 0;
        cached = supported;
    }
    return cached;
}

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
