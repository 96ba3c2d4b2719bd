// Fused CPU kernels for Fastformer training and inference in Paddle dygraph (float32).
//
// Paddle 3.3.1's CPU kernels for broadcast adds, broadcast products, layer norm and GELU, with their
// gradients, run 4-8x slower than PyTorch's on the same core (tools/benchmark.py), and in Fastformer
// they outweigh the matrix products. Each operator here replaces one chain of those small ops by one
// pass over memory, parallel over rows with OpenMP and vectorised by the compiler; the matrix
// products stay with Paddle (MKL). paddlenlp_fastformer/modeling.py keeps the pure-Paddle code beside
// every call as the reference, and tests/test_fused_ops.py proves the two agree, forward and backward.
//
// Shapes: M rows (tokens), C columns (features), B batch, N tokens, H heads, C = H * d.

#include <omp.h>

#include <cmath>
#include <vector>

#include "paddle/extension.h"

// glibc's libmvec has vector versions of these (linked with -lmvec); math.h announces them only
// under -ffast-math, which this file avoids (it relies on infinities), so they are declared here.
extern "C" float erff(float) __attribute__((simd("notinbranch")));
extern "C" float expf(float) __attribute__((simd("notinbranch")));

namespace {

constexpr float kInvSqrt2 = 0.70710678118654752440f;
constexpr float kInvSqrt2Pi = 0.39894228040143267794f;

void CheckFloat32Cpu(const paddle::Tensor& t, const char* name) {
  PD_CHECK(t.is_cpu(), name, " must be a CPU tensor");
  PD_CHECK(t.dtype() == paddle::DataType::FLOAT32, name, " must be float32");
}

// Rows and columns of a tensor read as [rows, last dimension].
int64_t Columns(const paddle::Tensor& t) { return t.shape().back(); }
int64_t Rows(const paddle::Tensor& t) { return t.numel() / Columns(t); }

// Column sums of a [rows, columns] matrix: per-thread partial sums, then one reduction.
void ColumnSums(const float* x, int64_t rows, int64_t columns, float* out) {
  const int threads = omp_get_max_threads();
  std::vector<float> partial(static_cast<size_t>(threads) * columns, 0.0f);
#pragma omp parallel
  {
    float* mine = partial.data() + static_cast<size_t>(omp_get_thread_num()) * columns;
#pragma omp for
    for (int64_t r = 0; r < rows; ++r) {
      const float* row = x + r * columns;
#pragma omp simd
      for (int64_t c = 0; c < columns; ++c) mine[c] += row[c];
    }
  }
  for (int64_t c = 0; c < columns; ++c) {
    float total = 0.0f;
    for (int t = 0; t < threads; ++t) total += partial[static_cast<size_t>(t) * columns + c];
    out[c] = total;
  }
}

enum Activation { kNone = 0, kGelu = 1 };

// ---------------------------------------------------------------------------------------------
// bias_act: out = act(x + bias), bias broadcast over rows; act is none or exact (erf) GELU.
// ---------------------------------------------------------------------------------------------
std::vector<paddle::Tensor> BiasActForward(const paddle::Tensor& x, const paddle::Tensor& bias, int activation) {
  CheckFloat32Cpu(x, "x");
  CheckFloat32Cpu(bias, "bias");
  const int64_t rows = Rows(x), columns = Columns(x);
  PD_CHECK(bias.numel() == columns, "bias has ", bias.numel(), " values for ", columns, " columns");
  auto out = paddle::empty(x.shape(), x.dtype(), x.place());
  const float* in = x.data<float>();
  const float* b = bias.data<float>();
  float* o = out.data<float>();
#pragma omp parallel for
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = in + r * columns;
    float* dst = o + r * columns;
    if (activation == kGelu) {
#pragma omp simd
      for (int64_t c = 0; c < columns; ++c) {
        const float v = row[c] + b[c];
        dst[c] = 0.5f * v * (1.0f + erff(v * kInvSqrt2));
      }
    } else {
#pragma omp simd
      for (int64_t c = 0; c < columns; ++c) dst[c] = row[c] + b[c];
    }
  }
  return {out};
}

std::vector<paddle::Tensor> BiasActBackward(const paddle::Tensor& x, const paddle::Tensor& bias,
                                            const paddle::Tensor& grad_out, int activation) {
  const int64_t rows = Rows(x), columns = Columns(x);
  auto grad_bias = paddle::empty(bias.shape(), bias.dtype(), bias.place());
  if (activation != kGelu) {
    // d x is d out itself: handing on the incoming buffer saves a copy (nothing else reads it).
    ColumnSums(grad_out.data<float>(), rows, columns, grad_bias.data<float>());
    return {grad_out, grad_bias};
  }
  auto grad_x = paddle::empty(x.shape(), x.dtype(), x.place());
  const float* in = x.data<float>();
  const float* b = bias.data<float>();
  const float* g = grad_out.data<float>();
  float* gx = grad_x.data<float>();
#pragma omp parallel for
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = in + r * columns;
    const float* grow = g + r * columns;
    float* dst = gx + r * columns;
#pragma omp simd
    for (int64_t c = 0; c < columns; ++c) {
      const float v = row[c] + b[c];
      const float cdf = 0.5f * (1.0f + erff(v * kInvSqrt2));
      const float pdf = kInvSqrt2Pi * expf(-0.5f * v * v);
      dst[c] = grow[c] * (cdf + v * pdf);
    }
  }
  ColumnSums(gx, rows, columns, grad_bias.data<float>());
  return {grad_x, grad_bias};
}

// ---------------------------------------------------------------------------------------------
// bias_residual: out = x + bias + residual (a projection's bias and a residual branch in one pass).
// ---------------------------------------------------------------------------------------------
std::vector<paddle::Tensor> BiasResidualForward(const paddle::Tensor& x, const paddle::Tensor& bias,
                                                const paddle::Tensor& residual) {
  CheckFloat32Cpu(x, "x");
  CheckFloat32Cpu(residual, "residual");
  PD_CHECK(x.shape() == residual.shape(), "x and residual must have the same shape");
  const int64_t rows = Rows(x), columns = Columns(x);
  PD_CHECK(bias.numel() == columns, "bias has ", bias.numel(), " values for ", columns, " columns");
  auto out = paddle::empty(x.shape(), x.dtype(), x.place());
  const float* in = x.data<float>();
  const float* b = bias.data<float>();
  const float* res = residual.data<float>();
  float* o = out.data<float>();
#pragma omp parallel for
  for (int64_t r = 0; r < rows; ++r) {
#pragma omp simd
    for (int64_t c = 0; c < columns; ++c) o[r * columns + c] = in[r * columns + c] + b[c] + res[r * columns + c];
  }
  return {out};
}

std::vector<paddle::Tensor> BiasResidualBackward(const paddle::Tensor& bias, const paddle::Tensor& grad_out) {
  auto grad_bias = paddle::empty(bias.shape(), bias.dtype(), bias.place());
  ColumnSums(grad_out.data<float>(), Rows(grad_out), Columns(grad_out), grad_bias.data<float>());
  // x and residual receive the same gradient: one gets the incoming buffer, the other its own copy.
  return {grad_out, grad_bias, grad_out.copy_to(grad_out.place(), false)};
}

// ---------------------------------------------------------------------------------------------
// add_layer_norm: sum = x + residual; out = (sum - mean) * rstd * gamma + beta over the last axis.
// layer_norm is the same without the residual. Sum, mean and rstd are kept for the backward.
// ---------------------------------------------------------------------------------------------
void LayerNormRows(const float* sum, const float* gamma, const float* beta, float eps, int64_t rows,
                   int64_t columns, float* out, float* mean, float* rstd) {
#pragma omp parallel for
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = sum + r * columns;
    float total = 0.0f;
#pragma omp simd reduction(+ : total)
    for (int64_t c = 0; c < columns; ++c) total += row[c];
    const float mu = total / columns;
    float squares = 0.0f;
#pragma omp simd reduction(+ : squares)
    for (int64_t c = 0; c < columns; ++c) squares += (row[c] - mu) * (row[c] - mu);
    const float inv = 1.0f / std::sqrt(squares / columns + eps);
    float* dst = out + r * columns;
#pragma omp simd
    for (int64_t c = 0; c < columns; ++c) dst[c] = (row[c] - mu) * inv * gamma[c] + beta[c];
    mean[r] = mu;
    rstd[r] = inv;
  }
}

std::vector<paddle::Tensor> LayerNormOutputs(const paddle::Tensor& sum, const paddle::Tensor& gamma,
                                             const paddle::Tensor& beta, float eps) {
  const int64_t rows = Rows(sum), columns = Columns(sum);
  PD_CHECK(gamma.numel() == columns && beta.numel() == columns, "gamma and beta need ", columns, " values");
  auto out = paddle::empty(sum.shape(), sum.dtype(), sum.place());
  auto mean = paddle::empty({rows}, sum.dtype(), sum.place());
  auto rstd = paddle::empty({rows}, sum.dtype(), sum.place());
  LayerNormRows(sum.data<float>(), gamma.data<float>(), beta.data<float>(), eps, rows, columns, out.data<float>(),
                mean.data<float>(), rstd.data<float>());
  return {out, mean, rstd};
}

std::vector<paddle::Tensor> AddLayerNormForward(const paddle::Tensor& x, const paddle::Tensor& residual,
                                                const paddle::Tensor& gamma, const paddle::Tensor& beta,
                                                float eps) {
  CheckFloat32Cpu(x, "x");
  CheckFloat32Cpu(residual, "residual");
  PD_CHECK(x.shape() == residual.shape(), "x and residual must have the same shape");
  auto sum = paddle::empty(x.shape(), x.dtype(), x.place());
  const float* a = x.data<float>();
  const float* b = residual.data<float>();
  float* s = sum.data<float>();
  const int64_t n = x.numel();
#pragma omp parallel for simd
  for (int64_t i = 0; i < n; ++i) s[i] = a[i] + b[i];
  auto outputs = LayerNormOutputs(sum, gamma, beta, eps);
  return {outputs[0], sum, outputs[1], outputs[2]};
}

std::vector<paddle::Tensor> LayerNormForward(const paddle::Tensor& x, const paddle::Tensor& gamma,
                                             const paddle::Tensor& beta, float eps) {
  CheckFloat32Cpu(x, "x");
  return LayerNormOutputs(x, gamma, beta, eps);
}

// d sum = rstd * (g * gamma - mean(g * gamma) - xhat * mean(g * gamma * xhat)); d gamma = sum(g * xhat); d beta = sum(g).
std::vector<paddle::Tensor> LayerNormGrads(const paddle::Tensor& sum, const paddle::Tensor& gamma,
                                           const paddle::Tensor& mean, const paddle::Tensor& rstd,
                                           const paddle::Tensor& grad_out) {
  const int64_t rows = Rows(sum), columns = Columns(sum);
  auto grad_sum = paddle::empty(sum.shape(), sum.dtype(), sum.place());
  auto grad_gamma = paddle::empty(gamma.shape(), gamma.dtype(), gamma.place());
  auto grad_beta = paddle::empty(gamma.shape(), gamma.dtype(), gamma.place());
  const float* s = sum.data<float>();
  const float* w = gamma.data<float>();
  const float* mu = mean.data<float>();
  const float* inv = rstd.data<float>();
  const float* g = grad_out.data<float>();
  float* gs = grad_sum.data<float>();
  const int threads = omp_get_max_threads();
  std::vector<float> partial_gamma(static_cast<size_t>(threads) * columns, 0.0f);
  std::vector<float> partial_beta(static_cast<size_t>(threads) * columns, 0.0f);
#pragma omp parallel
  {
    const size_t offset = static_cast<size_t>(omp_get_thread_num()) * columns;
    float* my_gamma = partial_gamma.data() + offset;
    float* my_beta = partial_beta.data() + offset;
#pragma omp for
    for (int64_t r = 0; r < rows; ++r) {
      const float* row = s + r * columns;
      const float* grow = g + r * columns;
      const float m = mu[r], i = inv[r];
      float mean_gw = 0.0f, mean_gwx = 0.0f;
#pragma omp simd reduction(+ : mean_gw, mean_gwx)
      for (int64_t c = 0; c < columns; ++c) {
        const float xhat = (row[c] - m) * i;
        const float gw = grow[c] * w[c];
        mean_gw += gw;
        mean_gwx += gw * xhat;
        my_gamma[c] += grow[c] * xhat;
        my_beta[c] += grow[c];
      }
      mean_gw /= columns;
      mean_gwx /= columns;
      float* dst = gs + r * columns;
#pragma omp simd
      for (int64_t c = 0; c < columns; ++c) {
        const float xhat = (row[c] - m) * i;
        dst[c] = i * (grow[c] * w[c] - mean_gw - xhat * mean_gwx);
      }
    }
  }
  float* gg = grad_gamma.data<float>();
  float* gb = grad_beta.data<float>();
  for (int64_t c = 0; c < columns; ++c) {
    float total_gamma = 0.0f, total_beta = 0.0f;
    for (int t = 0; t < threads; ++t) {
      total_gamma += partial_gamma[static_cast<size_t>(t) * columns + c];
      total_beta += partial_beta[static_cast<size_t>(t) * columns + c];
    }
    gg[c] = total_gamma;
    gb[c] = total_beta;
  }
  return {grad_sum, grad_gamma, grad_beta};
}

std::vector<paddle::Tensor> AddLayerNormBackward(const paddle::Tensor& sum, const paddle::Tensor& gamma,
                                                 const paddle::Tensor& mean, const paddle::Tensor& rstd,
                                                 const paddle::Tensor& grad_out, float eps) {
  auto grads = LayerNormGrads(sum, gamma, mean, rstd, grad_out);
  // x and residual receive the same gradient; each output needs its own buffer.
  return {grads[0], grads[0].copy_to(grads[0].place(), false), grads[1], grads[2]};
}

std::vector<paddle::Tensor> LayerNormBackward(const paddle::Tensor& x, const paddle::Tensor& gamma,
                                              const paddle::Tensor& mean, const paddle::Tensor& rstd,
                                              const paddle::Tensor& grad_out, float eps) {
  return LayerNormGrads(x, gamma, mean, rstd, grad_out);
}

// ---------------------------------------------------------------------------------------------
// token_pool: weights = softmax over tokens of (logits * scale), padding excluded (a row without any
// real token gets uniform weights); pooled[b, h, :] = sum_n weights[b, n, h] * values[b, n, h, :].
// logits [B, N, H], mask [B, N] (1 real, 0 padding), values [B, N, H * d] -> pooled [B, H * d].
// ---------------------------------------------------------------------------------------------
std::vector<paddle::Tensor> TokenPoolForward(const paddle::Tensor& logits, const paddle::Tensor& mask,
                                             const paddle::Tensor& values, float scale) {
  CheckFloat32Cpu(logits, "logits");
  CheckFloat32Cpu(mask, "mask");
  CheckFloat32Cpu(values, "values");
  const auto& shape = logits.shape();
  PD_CHECK(shape.size() == 3, "logits must be [B, N, H]");
  const int64_t batch = shape[0], tokens = shape[1], heads = shape[2];
  const int64_t width = Columns(values), head_size = width / heads;
  PD_CHECK(values.numel() == batch * tokens * width && width == heads * head_size, "values must be [B, N, H * d]");
  PD_CHECK(mask.numel() == batch * tokens, "mask must be [B, N]");
  auto weights = paddle::empty(shape, logits.dtype(), logits.place());
  auto pooled = paddle::empty({batch, width}, values.dtype(), values.place());
  const float* l = logits.data<float>();
  const float* m = mask.data<float>();
  const float* v = values.data<float>();
  float* w = weights.data<float>();
  float* p = pooled.data<float>();
  // One (batch row, head) pair per iteration: enough parallel work even for a single long sequence.
#pragma omp parallel for
  for (int64_t bh = 0; bh < batch * heads; ++bh) {
    const int64_t b = bh / heads, h = bh % heads;
    const float* mb = m + b * tokens;
    bool any_real = false;
    for (int64_t n = 0; n < tokens; ++n) any_real |= mb[n] != 0.0f;
    float largest = -INFINITY;
    for (int64_t n = 0; n < tokens; ++n) {
      if (mb[n] != 0.0f) largest = std::fmax(largest, l[(b * tokens + n) * heads + h] * scale);
    }
    float total = 0.0f;
    for (int64_t n = 0; n < tokens; ++n) {
      const int64_t at = (b * tokens + n) * heads + h;
      // Padding gets exactly zero weight; a row without real tokens is uniform, as in the reference.
      const float e = !any_real ? 1.0f : (mb[n] != 0.0f ? expf(l[at] * scale - largest) : 0.0f);
      w[at] = e;
      total += e;
    }
    float* ph = p + b * width + h * head_size;
    for (int64_t d = 0; d < head_size; ++d) ph[d] = 0.0f;
    for (int64_t n = 0; n < tokens; ++n) {
      const int64_t at = (b * tokens + n) * heads + h;
      const float weight = w[at] / total;
      w[at] = weight;
      const float* vh = v + (b * tokens + n) * width + h * head_size;
#pragma omp simd
      for (int64_t d = 0; d < head_size; ++d) ph[d] += weight * vh[d];
    }
  }
  return {pooled, weights};
}

// d values[b,n,h,:] = w * dp[b,h,:]; dw = <dp[b,h,:], values[b,n,h,:]>;
// d logits = scale * w * (dw - sum_n w * dw) on real tokens, 0 on padding (as the masked reference).
std::vector<paddle::Tensor> TokenPoolBackward(const paddle::Tensor& mask, const paddle::Tensor& values,
                                              const paddle::Tensor& weights, const paddle::Tensor& grad_pooled,
                                              float scale) {
  const auto& shape = weights.shape();
  const int64_t batch = shape[0], tokens = shape[1], heads = shape[2];
  const int64_t width = Columns(values), head_size = width / heads;
  auto grad_logits = paddle::empty(shape, weights.dtype(), weights.place());
  auto grad_values = paddle::empty(values.shape(), values.dtype(), values.place());
  const float* m = mask.data<float>();
  const float* v = values.data<float>();
  const float* w = weights.data<float>();
  const float* gp = grad_pooled.data<float>();
  float* gl = grad_logits.data<float>();
  float* gv = grad_values.data<float>();
#pragma omp parallel for
  for (int64_t bh = 0; bh < batch * heads; ++bh) {
    const int64_t b = bh / heads, h = bh % heads;
    const float* gph = gp + b * width + h * head_size;
    float weighted = 0.0f;
    for (int64_t n = 0; n < tokens; ++n) {
      const int64_t at = (b * tokens + n) * heads + h;
      const float weight = w[at];
      const float* vh = v + (b * tokens + n) * width + h * head_size;
      float* gvh = gv + (b * tokens + n) * width + h * head_size;
      float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
      for (int64_t d = 0; d < head_size; ++d) {
        dot += gph[d] * vh[d];
        gvh[d] = weight * gph[d];
      }
      gl[at] = dot;  // d weight, turned into d logit below
      weighted += weight * dot;
    }
    for (int64_t n = 0; n < tokens; ++n) {
      const int64_t at = (b * tokens + n) * heads + h;
      gl[at] = m[b * tokens + n] != 0.0f ? scale * w[at] * (gl[at] - weighted) : 0.0f;
    }
  }
  return {grad_logits, grad_values};
}

// ---------------------------------------------------------------------------------------------
// broadcast_mul: out[b, n, :] = x[b, n, :] * g[b, :] for x [B, N, C] and g [B, C].
// ---------------------------------------------------------------------------------------------
std::vector<paddle::Tensor> BroadcastMulForward(const paddle::Tensor& x, const paddle::Tensor& g) {
  CheckFloat32Cpu(x, "x");
  CheckFloat32Cpu(g, "g");
  const int64_t batch = x.shape()[0], columns = Columns(x), tokens = x.numel() / (batch * columns);
  PD_CHECK(g.numel() == batch * columns, "g must be [B, C] for x [B, N, C]");
  auto out = paddle::empty(x.shape(), x.dtype(), x.place());
  const float* a = x.data<float>();
  const float* gb = g.data<float>();
  float* o = out.data<float>();
#pragma omp parallel for
  for (int64_t row = 0; row < batch * tokens; ++row) {
    const float* gr = gb + (row / tokens) * columns;
#pragma omp simd
    for (int64_t c = 0; c < columns; ++c) o[row * columns + c] = a[row * columns + c] * gr[c];
  }
  return {out};
}

std::vector<paddle::Tensor> BroadcastMulBackward(const paddle::Tensor& x, const paddle::Tensor& g,
                                                 const paddle::Tensor& grad_out) {
  const int64_t batch = x.shape()[0], columns = Columns(x), tokens = x.numel() / (batch * columns);
  auto grad_x = paddle::empty(x.shape(), x.dtype(), x.place());
  auto grad_g = paddle::empty(g.shape(), g.dtype(), g.place());
  const float* a = x.data<float>();
  const float* gb = g.data<float>();
  const float* go = grad_out.data<float>();
  float* gx = grad_x.data<float>();
  float* gg = grad_g.data<float>();
  constexpr int64_t kBlock = 64;
  const int64_t blocks = (columns + kBlock - 1) / kBlock;
  // (batch row, column block) pairs: parallel even for one sequence; each pair owns its slice of grad_g.
#pragma omp parallel for
  for (int64_t item = 0; item < batch * blocks; ++item) {
    const int64_t b = item / blocks, first = (item % blocks) * kBlock;
    const int64_t last = first + kBlock < columns ? first + kBlock : columns;
    const float* gr = gb + b * columns;
    float* ggr = gg + b * columns;
    for (int64_t c = first; c < last; ++c) ggr[c] = 0.0f;
    for (int64_t n = 0; n < tokens; ++n) {
      const int64_t offset = (b * tokens + n) * columns;
#pragma omp simd
      for (int64_t c = first; c < last; ++c) {
        gx[offset + c] = go[offset + c] * gr[c];
        ggr[c] += go[offset + c] * a[offset + c];
      }
    }
  }
  return {grad_x, grad_g};
}

// ---------------------------------------------------------------------------------------------
// rotary: out = x * cos + turn(x) * sin per head feature vector, turn((x0, x1)) = (-x1, x0) on each
// adjacent pair; x [B, N, K, d] (K head slots), cos and sin [N, d] (pairs share an angle; cos 1 and
// sin 0 on features left unrotated).
// ---------------------------------------------------------------------------------------------
template <bool kBackward>
void RotatePairs(const float* x, const float* cos, const float* sin, int64_t batch, int64_t tokens, int64_t slots,
                 int64_t head_size, float* out) {
#pragma omp parallel for
  for (int64_t row = 0; row < batch * tokens; ++row) {
    const int64_t n = row % tokens;
    const float* c = cos + n * head_size;
    const float* s = sin + n * head_size;
    for (int64_t k = 0; k < slots; ++k) {
      const int64_t offset = (row * slots + k) * head_size;
      const float* v = x + offset;
      float* o = out + offset;
#pragma omp simd
      for (int64_t i = 0; i < head_size; i += 2) {
        if (kBackward) {  // the transpose: d x0 = g0 c0 + g1 s1, d x1 = g1 c1 - g0 s0
          o[i] = v[i] * c[i] + v[i + 1] * s[i + 1];
          o[i + 1] = v[i + 1] * c[i + 1] - v[i] * s[i];
        } else {
          o[i] = v[i] * c[i] - v[i + 1] * s[i];
          o[i + 1] = v[i + 1] * c[i + 1] + v[i] * s[i + 1];
        }
      }
    }
  }
}

std::vector<paddle::Tensor> RotaryForward(const paddle::Tensor& x, const paddle::Tensor& cos,
                                          const paddle::Tensor& sin) {
  CheckFloat32Cpu(x, "x");
  CheckFloat32Cpu(cos, "cos");
  CheckFloat32Cpu(sin, "sin");
  const auto& shape = x.shape();
  PD_CHECK(shape.size() == 4 && shape[3] % 2 == 0, "x must be [B, N, K, d] with d even");
  PD_CHECK(cos.numel() == shape[1] * shape[3] && sin.numel() == cos.numel(), "cos and sin must be [N, d]");
  auto out = paddle::empty(shape, x.dtype(), x.place());
  RotatePairs<false>(x.data<float>(), cos.data<float>(), sin.data<float>(), shape[0], shape[1], shape[2], shape[3],
                     out.data<float>());
  return {out};
}

std::vector<paddle::Tensor> RotaryBackward(const paddle::Tensor& cos, const paddle::Tensor& sin,
                                           const paddle::Tensor& grad_out) {
  const auto& shape = grad_out.shape();
  auto grad_x = paddle::empty(shape, grad_out.dtype(), grad_out.place());
  RotatePairs<true>(grad_out.data<float>(), cos.data<float>(), sin.data<float>(), shape[0], shape[1], shape[2],
                    shape[3], grad_x.data<float>());
  return {grad_x};
}

// ---- static graphs (an export that keeps the fused kernels): output shapes and dtypes, no kernel run ----
// Sizes unknown until run time are -1.
using Shape = std::vector<int64_t>;
using Shapes = std::vector<Shape>;
using Dtypes = std::vector<paddle::DataType>;

Shape RowsOf(const Shape& shape) {  // [product of all but the last axis]: the rows of Mean and Rstd
  int64_t rows = 1;
  for (size_t axis = 0; axis + 1 < shape.size(); ++axis) {
    if (shape[axis] < 0) return {-1};
    rows *= shape[axis];
  }
  return {rows};
}

Shapes LikeFirstOf2(const Shape& x, const Shape&) { return {x}; }
Shapes LikeFirstOf3(const Shape& x, const Shape&, const Shape&) { return {x}; }
Shapes AddLayerNormShapes(const Shape& x, const Shape&, const Shape&, const Shape&) { return {x, x, RowsOf(x), RowsOf(x)}; }
Shapes LayerNormShapes(const Shape& x, const Shape&, const Shape&) { return {x, RowsOf(x), RowsOf(x)}; }
Shapes TokenPoolShapes(const Shape& logits, const Shape&, const Shape& values) { return {{values[0], values.back()}, logits}; }

Dtypes DtypeOfFirstOf2(const paddle::DataType& x, const paddle::DataType&) { return {x}; }
Dtypes DtypeOfFirstOf3(const paddle::DataType& x, const paddle::DataType&, const paddle::DataType&) { return {x}; }
Dtypes AddLayerNormDtypes(const paddle::DataType& x, const paddle::DataType&, const paddle::DataType&,
                          const paddle::DataType&) {
  return {x, x, x, x};
}
Dtypes LayerNormDtypes(const paddle::DataType& x, const paddle::DataType&, const paddle::DataType&) { return {x, x, x}; }
Dtypes TokenPoolDtypes(const paddle::DataType& logits, const paddle::DataType&, const paddle::DataType& values) {
  return {values, logits};
}

}  // namespace

PD_BUILD_OP(fastformer_rotary)
    .Inputs({"X", "Cos", "Sin"})
    .Outputs({"Out"})
    .SetKernelFn(PD_KERNEL(RotaryForward))
    .SetInferShapeFn(PD_INFER_SHAPE(LikeFirstOf3))
    .SetInferDtypeFn(PD_INFER_DTYPE(DtypeOfFirstOf3));
PD_BUILD_GRAD_OP(fastformer_rotary)
    .Inputs({"Cos", "Sin", paddle::Grad("Out")})
    .Outputs({paddle::Grad("X")})
    .SetKernelFn(PD_KERNEL(RotaryBackward));

PD_BUILD_OP(fastformer_bias_act)
    .Inputs({"X", "Bias"})
    .Outputs({"Out"})
    .Attrs({"activation: int"})
    .SetKernelFn(PD_KERNEL(BiasActForward))
    .SetInferShapeFn(PD_INFER_SHAPE(LikeFirstOf2))
    .SetInferDtypeFn(PD_INFER_DTYPE(DtypeOfFirstOf2));
PD_BUILD_GRAD_OP(fastformer_bias_act)
    .Inputs({"X", "Bias", paddle::Grad("Out")})
    .Outputs({paddle::Grad("X"), paddle::Grad("Bias")})
    .Attrs({"activation: int"})
    .SetKernelFn(PD_KERNEL(BiasActBackward));

PD_BUILD_OP(fastformer_bias_residual)
    .Inputs({"X", "Bias", "Residual"})
    .Outputs({"Out"})
    .SetKernelFn(PD_KERNEL(BiasResidualForward))
    .SetInferShapeFn(PD_INFER_SHAPE(LikeFirstOf3))
    .SetInferDtypeFn(PD_INFER_DTYPE(DtypeOfFirstOf3));
PD_BUILD_GRAD_OP(fastformer_bias_residual)
    .Inputs({"Bias", paddle::Grad("Out")})
    .Outputs({paddle::Grad("X"), paddle::Grad("Bias"), paddle::Grad("Residual")})
    .SetKernelFn(PD_KERNEL(BiasResidualBackward));

PD_BUILD_OP(fastformer_add_layer_norm)
    .Inputs({"X", "Residual", "Gamma", "Beta"})
    .Outputs({"Out", "Sum", "Mean", "Rstd"})
    .Attrs({"eps: float"})
    .SetKernelFn(PD_KERNEL(AddLayerNormForward))
    .SetInferShapeFn(PD_INFER_SHAPE(AddLayerNormShapes))
    .SetInferDtypeFn(PD_INFER_DTYPE(AddLayerNormDtypes));
PD_BUILD_GRAD_OP(fastformer_add_layer_norm)
    .Inputs({"Sum", "Gamma", "Mean", "Rstd", paddle::Grad("Out")})
    .Outputs({paddle::Grad("X"), paddle::Grad("Residual"), paddle::Grad("Gamma"), paddle::Grad("Beta")})
    .Attrs({"eps: float"})
    .SetKernelFn(PD_KERNEL(AddLayerNormBackward));

PD_BUILD_OP(fastformer_layer_norm)
    .Inputs({"X", "Gamma", "Beta"})
    .Outputs({"Out", "Mean", "Rstd"})
    .Attrs({"eps: float"})
    .SetKernelFn(PD_KERNEL(LayerNormForward))
    .SetInferShapeFn(PD_INFER_SHAPE(LayerNormShapes))
    .SetInferDtypeFn(PD_INFER_DTYPE(LayerNormDtypes));
PD_BUILD_GRAD_OP(fastformer_layer_norm)
    .Inputs({"X", "Gamma", "Mean", "Rstd", paddle::Grad("Out")})
    .Outputs({paddle::Grad("X"), paddle::Grad("Gamma"), paddle::Grad("Beta")})
    .Attrs({"eps: float"})
    .SetKernelFn(PD_KERNEL(LayerNormBackward));

PD_BUILD_OP(fastformer_token_pool)
    .Inputs({"Logits", "Mask", "Values"})
    .Outputs({"Pooled", "Weights"})
    .Attrs({"scale: float"})
    .SetKernelFn(PD_KERNEL(TokenPoolForward))
    .SetInferShapeFn(PD_INFER_SHAPE(TokenPoolShapes))
    .SetInferDtypeFn(PD_INFER_DTYPE(TokenPoolDtypes));
PD_BUILD_GRAD_OP(fastformer_token_pool)
    .Inputs({"Mask", "Values", "Weights", paddle::Grad("Pooled")})
    .Outputs({paddle::Grad("Logits"), paddle::Grad("Values")})
    .Attrs({"scale: float"})
    .SetKernelFn(PD_KERNEL(TokenPoolBackward));

PD_BUILD_OP(fastformer_broadcast_mul)
    .Inputs({"X", "G"})
    .Outputs({"Out"})
    .SetKernelFn(PD_KERNEL(BroadcastMulForward))
    .SetInferShapeFn(PD_INFER_SHAPE(LikeFirstOf2))
    .SetInferDtypeFn(PD_INFER_DTYPE(DtypeOfFirstOf2));
PD_BUILD_GRAD_OP(fastformer_broadcast_mul)
    .Inputs({"X", "G", paddle::Grad("Out")})
    .Outputs({paddle::Grad("X"), paddle::Grad("G")})
    .SetKernelFn(PD_KERNEL(BroadcastMulBackward));
