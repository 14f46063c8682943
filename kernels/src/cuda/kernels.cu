// autoseg's CUDA kernels, compiled at run time by NVRTC (see cuda.rs). Each mirrors a CPU
// routine of the crate and is checked against it in kernels/tests/cuda.rs.

// NVRTC has no math.h: +infinity from its bits.
#define AUTOSEG_INF __longlong_as_double(0x7ff0000000000000LL)

// Confusion counts: counts[ref * classes + pred] over n voxels. Each block counts in shared
// memory (classes^2 cells) and adds its cells to the global table once.
extern "C" __global__ void confusion_counts(const unsigned short* pred, const unsigned short* ref,
                                            unsigned long long n, unsigned int classes,
                                            unsigned long long* counts) {
    extern __shared__ unsigned long long local[];
    const unsigned int cells = classes * classes;
    for (unsigned int i = threadIdx.x; i < cells; i += blockDim.x) local[i] = 0ULL;
    __syncthreads();
    const unsigned long long step = (unsigned long long)gridDim.x * blockDim.x;
    for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
        atomicAdd(&local[(unsigned int)ref[i] * classes + pred[i]], 1ULL);
    }
    __syncthreads();
    for (unsigned int i = threadIdx.x; i < cells; i += blockDim.x) {
        if (local[i] != 0ULL) atomicAdd(&counts[i], local[i]);
    }
}

// One axis of the exact squared Euclidean distance transform: each thread runs the lower
// envelope of parabolas (Felzenszwalb & Huttenlocher) along one line of d, in place. Lines:
// axis 0 -> rows (start line * nx, stride 1); axis 1 -> start (line / nx) * nx * ny + line % nx,
// stride nx; axis 2 -> start line, stride nx * ny. v, z, f: per-line scratch of n, n + 1, n.
extern "C" __global__ void edt_lines(double* d, unsigned long long lines, unsigned int n,
                                     unsigned int axis, unsigned long long nx, unsigned long long ny,
                                     double spacing, int* v_all, double* z_all, double* f_all) {
    const unsigned long long line = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (line >= lines) return;
    unsigned long long start, stride;
    if (axis == 0) { start = line * nx; stride = 1; }
    else if (axis == 1) { start = (line / nx) * nx * ny + line % nx; stride = nx; }
    else { start = line; stride = nx * ny; }
    int* v = v_all + line * n;
    double* z = z_all + line * (n + 1);
    double* f = f_all + line * n;
    for (unsigned int q = 0; q < n; ++q) f[q] = d[start + q * stride];
    const double s2 = spacing * spacing;
    int k = -1;
    for (unsigned int q = 0; q < n; ++q) {
        if (isinf(f[q])) continue;
        if (k < 0) { k = 0; v[0] = (int)q; z[0] = -AUTOSEG_INF; z[1] = AUTOSEG_INF; continue; }
        double s;
        for (;;) {
            const int p = v[k];
            s = ((f[q] + s2 * (double)((unsigned long long)q * q)) -
                 (f[p] + s2 * (double)((unsigned long long)p * p))) /
                (2.0 * s2 * ((double)q - (double)p));
            if (s <= z[k]) { --k; } else { break; }
        }
        ++k;
        v[k] = (int)q;
        z[k] = s;
        z[k + 1] = AUTOSEG_INF;
    }
    if (k < 0) return;
    int j = 0;
    for (unsigned int q = 0; q < n; ++q) {
        while (z[j + 1] < (double)q) ++j;
        const int p = v[j];
        const double dq = spacing * ((double)q - (double)p);
        d[start + q * stride] = dq * dq + f[p];
    }
}

// Adds one window (origin o, size w) of `channels` channels, weighted by `importance`, into
// the whole-volume sums and weights. Windows are added one launch at a time, so each voxel is
// written by one thread per launch.
extern "C" __global__ void accumulate_window(float* sum, float* weight, const float* values,
                                             const float* importance, unsigned long long ox,
                                             unsigned long long oy, unsigned long long oz,
                                             unsigned long long wx, unsigned long long wy,
                                             unsigned long long wz, unsigned long long nx,
                                             unsigned long long ny, unsigned long long nz,
                                             unsigned int channels) {
    const unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    const unsigned long long window = wx * wy * wz;
    if (i >= window) return;
    const unsigned long long x = i % wx, y = (i / wx) % wy, zz = i / (wx * wy);
    const unsigned long long at = ((oz + zz) * ny + oy + y) * nx + ox + x;
    const unsigned long long volume = nx * ny * nz;
    const float w = importance[i];
    weight[at] += w;
    for (unsigned int c = 0; c < channels; ++c) sum[c * volume + at] += values[c * window + i] * w;
}

// Divides the sums by the weights (0 where no window reached).
extern "C" __global__ void normalize_windows(float* sum, const float* weight, unsigned long long volume,
                                             unsigned int channels) {
    const unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= volume * channels) return;
    const float w = weight[i % volume];
    sum[i] = w > 0.0f ? sum[i] / w : 0.0f;
}

// Nearest/linear resampling straight from the input (resample.rs, resample_direct): each output
// voxel sums its eight neighbours with per-axis taps (two indices and two weights per output
// coordinate, computed on the host by the same plan as the CPU path).
extern "C" __global__ void resample_direct(const float* in, float* out, unsigned long long inx,
                                           unsigned long long iny, unsigned long long onx,
                                           unsigned long long ony, unsigned long long onz,
                                           const unsigned long long* xi, const float* xw,
                                           const unsigned long long* yi, const float* yw,
                                           const unsigned long long* zi, const float* zw) {
    const unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= onx * ony * onz) return;
    const unsigned long long x = i % onx, y = (i / onx) % ony, z = i / (onx * ony);
    const float wz[2] = {zw[2 * z], zw[2 * z + 1]};
    const float wy[2] = {yw[2 * y], yw[2 * y + 1]};
    float sum = 0.0f;
    for (int a = 0; a < 2; ++a) {
        for (int b = 0; b < 2; ++b) {
            const float* line = in + (zi[2 * z + a] * iny + yi[2 * y + b]) * inx;
            const float w = wz[a] * wy[b];
            sum += w * (xw[2 * x] * line[xi[2 * x]] + xw[2 * x + 1] * line[xi[2 * x + 1]]);
        }
    }
    out[i] = sum;
}

// Surface voxels (surface.rs): in the mask and not all six face neighbours in it; outside the
// volume counts as background.
extern "C" __global__ void surface_mask(const unsigned char* mask, unsigned char* out,
                                        unsigned long long nx, unsigned long long ny,
                                        unsigned long long nz) {
    const unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= nx * ny * nz) return;
    if (!mask[i]) { out[i] = 0; return; }
    const unsigned long long x = i % nx, y = (i / nx) % ny, z = i / (nx * ny);
    const bool interior = x > 0 && x + 1 < nx && y > 0 && y + 1 < ny && z > 0 && z + 1 < nz &&
                          mask[i - 1] && mask[i + 1] && mask[i - nx] && mask[i + nx] &&
                          mask[i - nx * ny] && mask[i + nx * ny];
    out[i] = interior ? 0 : 1;
}

// The bilateral grid (bilateral.rs, GridLayout): grid coordinates of voxel i with guide value v.
__device__ void grid_coordinates(unsigned long long i, float v, unsigned long long nx, unsigned long long ny,
                                 float lo, double sigma_s, double sigma_r, double pad, double* at) {
    at[0] = (double)(i % nx) / sigma_s + pad;
    at[1] = (double)((i / nx) % ny) / sigma_s + pad;
    at[2] = (double)(i / (nx * ny)) / sigma_s + pad;
    at[3] = (double)(v - lo) / sigma_r + pad;
}

// Splat: each voxel's value and a count of 1 into its nearest cell (atomics, so the order of
// the float sums differs from the CPU's).
extern "C" __global__ void grid_splat(const float* values, const float* guide, unsigned long long n,
                                      unsigned long long nx, unsigned long long ny, float lo,
                                      double sigma_s, double sigma_r, double pad, unsigned long long g0,
                                      unsigned long long g1, unsigned long long g2, float* sum,
                                      float* count) {
    const unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    double at[4];
    grid_coordinates(i, guide[i], nx, ny, lo, sigma_s, sigma_r, pad, at);
    unsigned long long c[4];
    for (int a = 0; a < 4; ++a) c[a] = (unsigned long long)round(at[a]);
    const unsigned long long index = ((c[3] * g2 + c[2]) * g1 + c[1]) * g0 + c[0];
    atomicAdd(&sum[index], values[i]);
    atomicAdd(&count[index], 1.0f);
}

// [1 4 6 4 1] / 16 along one of the grid's four axes (zero outside), src -> dst.
extern "C" __global__ void grid_blur(const float* src, float* dst, unsigned long long cells,
                                     unsigned long long stride, unsigned long long n) {
    const unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= cells) return;
    const float taps[5] = {1.0f / 16.0f, 4.0f / 16.0f, 6.0f / 16.0f, 4.0f / 16.0f, 1.0f / 16.0f};
    const long long k = (long long)((i / stride) % n);
    float acc = 0.0f;
    for (int t = 0; t < 5; ++t) {
        const long long j = k + t - 2;
        if (j >= 0 && j < (long long)n) acc += taps[t] * src[i - k * stride + j * stride];
    }
    dst[i] = acc;
}

// Slice: quadrilinear interpolation of the blurred sums and counts.
extern "C" __global__ void grid_slice(const float* values, const float* guide, float* out,
                                      unsigned long long n, unsigned long long nx, unsigned long long ny,
                                      float lo, double sigma_s, double sigma_r, double pad,
                                      unsigned long long g0, unsigned long long g1, unsigned long long g2,
                                      const float* sum, const float* count) {
    const unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    double at[4];
    grid_coordinates(i, guide[i], nx, ny, lo, sigma_s, sigma_r, pad, at);
    unsigned long long base[4];
    double frac[4];
    for (int a = 0; a < 4; ++a) { base[a] = (unsigned long long)floor(at[a]); frac[a] = at[a] - (double)base[a]; }
    double s = 0.0, w = 0.0;
    for (int corner = 0; corner < 16; ++corner) {
        double weight = 1.0;
        unsigned long long c[4];
        for (int a = 0; a < 4; ++a) {
            if ((corner >> a) & 1) { c[a] = base[a] + 1; weight *= frac[a]; }
            else { c[a] = base[a]; weight *= 1.0 - frac[a]; }
        }
        const unsigned long long index = ((c[3] * g2 + c[2]) * g1 + c[1]) * g0 + c[0];
        s += weight * (double)sum[index];
        w += weight * (double)count[index];
    }
    out[i] = w > 0.0 ? (float)(s / w) : values[i];
}

// Dense CRF (crf.rs). Softmax over classes at every voxel (class-major layout).
extern "C" __global__ void softmax_classes(const float* scores, float* probs, unsigned long long n,
                                           unsigned int classes) {
    const unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float top = -AUTOSEG_INF;
    for (unsigned int c = 0; c < classes; ++c) top = fmaxf(top, scores[c * n + i]);
    float total = 0.0f;
    for (unsigned int c = 0; c < classes; ++c) total += expf(scores[c * n + i] - top);
    for (unsigned int c = 0; c < classes; ++c) probs[c * n + i] = expf(scores[c * n + i] - top) / total;
}

// One axis of the separable Gaussian (taps 2 * radius + 1), zero outside the volume.
extern "C" __global__ void gauss_blur_axis(const float* src, float* dst, unsigned long long nx,
                                           unsigned long long ny, unsigned long long nz, unsigned int axis,
                                           const float* taps, long long radius) {
    const unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    const unsigned long long total = nx * ny * nz;
    if (i >= total) return;
    const unsigned long long stride = axis == 0 ? 1 : (axis == 1 ? nx : nx * ny);
    const long long n = (long long)(axis == 0 ? nx : (axis == 1 ? ny : nz));
    const long long k = (long long)((i / stride) % (unsigned long long)n);
    const unsigned long long start = i - (unsigned long long)k * stride;
    float acc = 0.0f;
    for (long long d = -radius; d <= radius; ++d) {
        const long long j = k + d;
        if (j >= 0 && j < n) acc += taps[d + radius] * src[start + (unsigned long long)j * stride];
    }
    dst[i] = acc;
}

// output = unary + update * (w_app * appearance + w_smooth * blurred / blurred_ones).
extern "C" __global__ void crf_combine(const float* unary, const float* appearance, const float* blurred,
                                       const float* blurred_ones, float* output, unsigned long long n,
                                       float w_app, float w_smooth, float update) {
    const unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    output[i] = unary[i] + update * (w_app * appearance[i] + w_smooth * (blurred[i] / blurred_ones[i]));
}

// Connected components (components.rs): union-find over voxels. Every voxel starts as its own
// root; each joins its already-visited neighbours of the same class (atomicMin keeps the
// smallest index as the root, so a component's root is its first voxel in raster order, as on
// the CPU); a last pass points every voxel at its root.
__device__ unsigned int cc_find(const unsigned int* parent, unsigned int x) {
    while (parent[x] != x) x = parent[x];
    return x;
}

__device__ void cc_union(unsigned int* parent, unsigned int a, unsigned int b) {
    for (;;) {
        a = cc_find(parent, a);
        b = cc_find(parent, b);
        if (a == b) return;
        if (a < b) { const unsigned int t = a; a = b; b = t; }
        const unsigned int old = atomicMin(&parent[a], b);
        if (old == a) return;
        a = old;
    }
}

extern "C" __global__ void cc_init(unsigned int* parent, unsigned long long n) {
    const unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) parent[i] = (unsigned int)i;
}

extern "C" __global__ void cc_merge(const unsigned short* labels, unsigned int* parent, unsigned long long nx,
                                    unsigned long long ny, unsigned long long nz, unsigned int full) {
    const unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= nx * ny * nz) return;
    const long long x = (long long)(i % nx), y = (long long)((i / nx) % ny), z = (long long)(i / (nx * ny));
    for (long long dz = -1; dz <= 0; ++dz) {
        for (long long dy = -1; dy <= 1; ++dy) {
            for (long long dx = -1; dx <= 1; ++dx) {
                // Already-visited neighbours only: earlier slice, or earlier row, or earlier voxel.
                if (dz == 0 && (dy > 0 || (dy == 0 && dx >= 0))) continue;
                const long long m = (dx != 0) + (dy != 0) + (dz != 0);
                if (!full && m > 1) continue;
                const long long a = x + dx, b = y + dy, c = z + dz;
                if (a < 0 || b < 0 || c < 0 || a >= (long long)nx || b >= (long long)ny) continue;
                const unsigned long long j = ((unsigned long long)c * ny + (unsigned long long)b) * nx + (unsigned long long)a;
                if (labels[j] == labels[i]) cc_union(parent, (unsigned int)i, (unsigned int)j);
            }
        }
    }
}

extern "C" __global__ void cc_flatten(unsigned int* parent, unsigned long long n) {
    const unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) parent[i] = cc_find(parent, (unsigned int)i);
}

// Separable resampling along one axis (resample.rs, the cubic path). Lines along `axis` of a
// volume nx x ny x nz are numbered as in edt_lines; a line's start and stride:
__device__ void line_of(unsigned long long line, unsigned int axis, unsigned long long nx, unsigned long long ny,
                        unsigned long long* start, unsigned long long* stride) {
    if (axis == 0) { *start = line * nx; *stride = 1; }
    else if (axis == 1) { *start = (line / nx) * nx * ny + line % nx; *stride = nx; }
    else { *start = line; *stride = nx * ny; }
}

// Cubic B-spline coefficients of every line (12 edge values padded each side, then the
// mirror-boundary recursive filter), into coef[line * (n + 24) ...].
extern "C" __global__ void spline_coefficients(const double* src, double* coef, unsigned long long lines,
                                               unsigned long long nx, unsigned long long ny, unsigned int axis,
                                               unsigned long long n) {
    const unsigned long long line = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (line >= lines) return;
    unsigned long long start, stride;
    line_of(line, axis, nx, ny, &start, &stride);
    const unsigned long long pad = 12, len = n + 2 * pad;
    double* c = coef + line * len;
    const double z = sqrt(3.0) - 2.0;
    const double gain = (1.0 - z) * (1.0 - 1.0 / z);
    for (unsigned long long k = 0; k < len; ++k) {
        const unsigned long long at = k < pad ? 0 : (k - pad >= n ? n - 1 : k - pad);
        c[k] = src[start + at * stride] * gain;
    }
    const double z_n_1 = pow(z, (double)(len - 1));
    double z_i = z;
    double c0 = c[0] + z_n_1 * c[len - 1];
    for (unsigned long long i = 1; i < len - 1; ++i) {
        c0 += z_i * (c[i] + z_n_1 * c[len - 1 - i]);
        z_i *= z;
    }
    c[0] = c0 * (1.0 / (1.0 - z_n_1 * z_n_1));
    for (unsigned long long i = 1; i < len; ++i) c[i] += z * c[i - 1];
    c[len - 1] = (z * c[len - 2] + c[len - 1]) * (z / (z * z - 1.0));
    for (long long i = (long long)len - 2; i >= 0; --i) c[i] = z * (c[i + 1] - c[i]);
}

__device__ long long mirror_index(long long i, long long n) {
    if (n == 1) return 0;
    const long long period = 2 * (n - 1);
    long long r = i % period;
    if (r < 0) r += period;
    return r >= n ? period - r : r;
}

// One output value along `axis` (length n in, m out): order 0 reads the nearest input, 1 the
// two linear taps, 3 the four spline taps of the line's coefficients (first[k], w[4k..4k+4]).
extern "C" __global__ void axis_taps(const double* src, const double* coef, double* dst,
                                     unsigned long long nx, unsigned long long ny, unsigned long long nz,
                                     unsigned int axis, unsigned long long m, const long long* first,
                                     const double* w, unsigned int order) {
    unsigned long long out_dims[3] = {nx, ny, nz};
    const unsigned long long n = out_dims[axis];
    out_dims[axis] = m;
    const unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= out_dims[0] * out_dims[1] * out_dims[2]) return;
    const unsigned long long x = i % out_dims[0], y = (i / out_dims[0]) % out_dims[1],
                             zz = i / (out_dims[0] * out_dims[1]);
    const unsigned long long coords[3] = {x, y, zz};
    const unsigned long long k = coords[axis];
    unsigned long long line;
    if (axis == 0) line = zz * ny + y;
    else if (axis == 1) line = zz * nx + x;
    else line = y * nx + x;
    const long long f = first[k];
    double v;
    if (order == 3) {
        const long long len = (long long)n + 24;
        const double* c = coef + line * (unsigned long long)len;
        v = 0.0;
        for (int t = 0; t < 4; ++t) v += w[4 * k + t] * c[mirror_index(f + t, len)];
    } else {
        unsigned long long start, stride;
        line_of(line, axis, nx, ny, &start, &stride);
        const long long last = (long long)n - 1;
        const long long a = f < 0 ? 0 : (f > last ? last : f);
        if (order == 0) {
            v = src[start + (unsigned long long)a * stride];
        } else {
            const long long b = f + 1 < 0 ? 0 : (f + 1 > last ? last : f + 1);
            v = w[4 * k] * src[start + (unsigned long long)a * stride] + w[4 * k + 1] * src[start + (unsigned long long)b * stride];
        }
    }
    dst[i] = v;
}

// Clips each slice across `axis` to its own range (lo[k], hi[k]).
extern "C" __global__ void clip_slices(double* v, unsigned long long nx, unsigned long long ny,
                                       unsigned long long nz, unsigned int axis, const double* lo,
                                       const double* hi) {
    const unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= nx * ny * nz) return;
    const unsigned long long coords[3] = {i % nx, (i / nx) % ny, i / (nx * ny)};
    const unsigned long long k = coords[axis];
    v[i] = fmin(fmax(v[i], lo[k]), hi[k]);
}
