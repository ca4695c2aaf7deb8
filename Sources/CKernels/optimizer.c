// Optimizer updates over a weight and its gradient: a memory-bound pass (AlexNet's Adam step
// reads and writes 1.7 GB), so the loop must stream at full vector width. Every lane does the
// scalar formula's operations in the scalar order, without fused multiply-adds, so every level
// gives the same bits as the portable loop.
#include "CKernels.h"
#include "internal.h"

#include <math.h>

#pragma clang fp contract(off)

static void adam_portable(float *w, const float *g, float *m, float *v, int count,
                          float alpha, float beta1, float beta2, float epsilon) {
    float keep1 = 1 - beta1, keep2 = 1 - beta2;
    for (int i = 0; i < count; i++) {
        m[i] += (g[i] - m[i]) * keep1;
        v[i] += (g[i] * g[i] - v[i]) * keep2;
        w[i] -= m[i] * alpha / (sqrtf(v[i]) + epsilon);
    }
}

static void sgd_portable(float *w, const float *g, float *velocity, int count, float learningRate,
                         float momentum, int nesterov) {
    for (int i = 0; i < count; i++) {
        velocity[i] = velocity[i] * momentum - g[i] * learningRate;
        w[i] += nesterov ? velocity[i] * momentum - g[i] * learningRate : velocity[i];
    }
}

#if TL_X86
TL_AVX512 static void adam_avx512(float *w, const float *g, float *m, float *v, int count,
                                  float alpha, float beta1, float beta2, float epsilon) {
    const __m512 keep1 = _mm512_set1_ps(1 - beta1), keep2 = _mm512_set1_ps(1 - beta2);
    const __m512 alpha_ = _mm512_set1_ps(alpha), epsilon_ = _mm512_set1_ps(epsilon);
    int i = 0;
    for (; i + 16 <= count; i += 16) {
        __m512 gradient = _mm512_loadu_ps(g + i);
        __m512 first = _mm512_loadu_ps(m + i), second = _mm512_loadu_ps(v + i);
        first = _mm512_add_ps(first, _mm512_mul_ps(_mm512_sub_ps(gradient, first), keep1));
        second = _mm512_add_ps(second, _mm512_mul_ps(_mm512_sub_ps(_mm512_mul_ps(gradient, gradient), second), keep2));
        __m512 step = _mm512_div_ps(_mm512_mul_ps(first, alpha_), _mm512_add_ps(_mm512_sqrt_ps(second), epsilon_));
        _mm512_storeu_ps(m + i, first);
        _mm512_storeu_ps(v + i, second);
        _mm512_storeu_ps(w + i, _mm512_sub_ps(_mm512_loadu_ps(w + i), step));
    }
    adam_portable(w + i, g + i, m + i, v + i, count - i, alpha, beta1, beta2, epsilon);
}

TL_AVX512 static void sgd_avx512(float *w, const float *g, float *velocity, int count, float learningRate,
                                 float momentum, int nesterov) {
    const __m512 rate = _mm512_set1_ps(learningRate), momentum_ = _mm512_set1_ps(momentum);
    int i = 0;
    for (; i + 16 <= count; i += 16) {
        __m512 scaled = _mm512_mul_ps(_mm512_loadu_ps(g + i), rate);
        __m512 next = _mm512_sub_ps(_mm512_mul_ps(_mm512_loadu_ps(velocity + i), momentum_), scaled);
        _mm512_storeu_ps(velocity + i, next);
        __m512 change = nesterov ? _mm512_sub_ps(_mm512_mul_ps(next, momentum_), scaled) : next;
        _mm512_storeu_ps(w + i, _mm512_add_ps(_mm512_loadu_ps(w + i), change));
    }
    sgd_portable(w + i, g + i, velocity + i, count - i, learningRate, momentum, nesterov);
}
#endif

void tl_adam_update_level(int level, float *w, const float *g, float *m, float *v, int count,
                          float alpha, float beta1, float beta2, float epsilon) {
    level = tl_min(level, tl_cpu_kernel_level());
#if TL_X86
    if (level >= 2) { adam_avx512(w, g, m, v, count, alpha, beta1, beta2, epsilon); return; }
#endif
    adam_portable(w, g, m, v, count, alpha, beta1, beta2, epsilon);
}

void tl_adam_update(float *w, const float *g, float *m, float *v, int count,
                    float alpha, float beta1, float beta2, float epsilon) {
    tl_adam_update_level(tl_cpu_kernel_level(), w, g, m, v, count, alpha, beta1, beta2, epsilon);
}

void tl_sgd_update_level(int level, float *w, const float *g, float *velocity, int count, float learningRate,
                         float momentum, int nesterov) {
    level = tl_min(level, tl_cpu_kernel_level());
#if TL_X86
    if (level >= 2) { sgd_avx512(w, g, velocity, count, learningRate, momentum, nesterov); return; }
#endif
    sgd_portable(w, g, velocity, count, learningRate, momentum, nesterov);
}

void tl_sgd_update(float *w, const float *g, float *velocity, int count, float learningRate, float momentum,
                   int nesterov) {
    tl_sgd_update_level(tl_cpu_kernel_level(), w, g, velocity, count, learningRate, momentum, nesterov);
}
