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
