//! One line's resampling plan: the taps and weights of each output sample, and the cubic
//! B-spline prefilter scipy runs before sampling.

use super::Order;

/// Padding scipy puts on each side before the spline prefilter in 'nearest' mode.
const SPLINE_PAD: usize = 12;

/// The taps of every output sample of a line of `n` inputs resampled to `m`.
pub(super) struct LinePlan {
    order: Order,
    n: usize,
    /// Per output: (first input index, weights), indices into the (padded, for cubic) line.
    pub(super) taps: Vec<(isize, [f64; 4])>,
}

impl LinePlan {
    pub(super) fn new(n: usize, m: usize, order: Order) -> LinePlan {
        let scale = n as f64 / m as f64;
        let taps = (0..m)
            .map(|i| {
                let x = (i as f64 + 0.5) * scale - 0.5;
                match order {
                    Order::Nearest => ((x + 0.5).floor() as isize, [1.0, 0.0, 0.0, 0.0]),
                    Order::Linear => {
                        let f = x.floor();
                        (f as isize, [1.0 - (x - f), x - f, 0.0, 0.0])
                    }
                    Order::Cubic => {
                        let f = x.floor();
                        let (t, u) = (x - f, 1.0 - (x - f));
                        let w = [
                            u * u * u / 6.0,
                            (t * t * (t - 2.0) * 3.0 + 4.0) / 6.0,
                            (u * u * (u - 2.0) * 3.0 + 4.0) / 6.0,
                            t * t * t / 6.0,
                        ];
                        (f as isize - 1 + SPLINE_PAD as isize, w)
                    }
                }
            })
            .collect();
        LinePlan { order, n, taps }
    }

    /// Filters one contiguous line `src` of n values into `dst` of m values; `scratch` holds
    /// the spline coefficients between calls.
    pub(super) fn apply_contiguous(&self, src: &[f64], dst: &mut [f64], scratch: &mut Vec<f64>) {
        let last = self.n as isize - 1;
        let at = |i: isize| src[i.clamp(0, last) as usize];
        match self.order {
            Order::Nearest => dst
                .iter_mut()
                .zip(&self.taps)
                .for_each(|(d, &(i, _))| *d = at(i)),
            Order::Linear => dst
                .iter_mut()
                .zip(&self.taps)
                .for_each(|(d, &(i, w))| *d = w[0] * at(i) + w[1] * at(i + 1)),
            Order::Cubic => {
                let rows: Vec<&[f64]> = src.chunks(1).collect();
                cubic_coefficients(&rows, 1, scratch);
                let c = &scratch[..];
                let len = c.len() as isize;
                for (d, &(i, w)) in dst.iter_mut().zip(&self.taps) {
                    *d = (0..4).map(|k| w[k] * c[mirror(i + k as isize, len)]).sum();
                }
            }
        }
    }

    /// Filters `rows` (n rows of `cols` values: one line per column) into `out`, m rows,
    /// row-major, which must start zeroed.
    pub(super) fn apply(
        &self,
        rows: &[&[f64]],
        cols: usize,
        out: &mut [f64],
        scratch: &mut Vec<f64>,
    ) {
        let last = self.n as isize - 1;
        let add = |dst: &mut [f64], w: f64, src: &[f64]| {
            for (d, s) in dst.iter_mut().zip(src) {
                *d += w * s;
            }
        };
        match self.order {
            Order::Nearest => {
                for (dst, &(i, _)) in out.chunks_exact_mut(cols).zip(&self.taps) {
                    dst.copy_from_slice(rows[i.clamp(0, last) as usize]);
                }
            }
            Order::Linear => {
                for (dst, &(i, w)) in out.chunks_exact_mut(cols).zip(&self.taps) {
                    add(dst, w[0], rows[i.clamp(0, last) as usize]);
                    add(dst, w[1], rows[(i + 1).clamp(0, last) as usize]);
                }
            }
            Order::Cubic => {
                cubic_coefficients(rows, cols, scratch);
                let coefficients = &scratch[..];
                let len = (coefficients.len() / cols) as isize;
                for (dst, &(i, w)) in out.chunks_exact_mut(cols).zip(&self.taps) {
                    for (k, &wk) in w.iter().enumerate() {
                        let r = mirror(i + k as isize, len);
                        add(dst, wk, &coefficients[r * cols..(r + 1) * cols]);
                    }
                }
            }
        }
    }
}

/// Mirror boundary index (scipy's 'mirror': ... 2 1 | 0 1 2 ... n-1 | n-2 ...).
fn mirror(i: isize, n: isize) -> usize {
    if n == 1 {
        return 0;
    }
    let period = 2 * (n - 1);
    let mut i = i.rem_euclid(period);
    if i >= n {
        i = period - i;
    }
    i as usize
}

/// Cubic B-spline coefficients of each column's line, padded with SPLINE_PAD edge values on
/// each side (scipy's `spline_filter1d` with mirror boundaries on the padded line); rows of
/// `cols` values, n + 2 SPLINE_PAD of them.
fn cubic_coefficients(rows: &[&[f64]], cols: usize, c: &mut Vec<f64>) {
    let (first, last) = (rows[0], rows[rows.len() - 1]);
    let padded: Vec<&[f64]> = std::iter::repeat_n(first, SPLINE_PAD)
        .chain(rows.iter().copied())
        .chain(std::iter::repeat_n(last, SPLINE_PAD))
        .collect();
    let n = padded.len();
    let z = 3f64.sqrt() - 2.0;
    let gain = (1.0 - z) * (1.0 - 1.0 / z);
    c.clear();
    c.extend(padded.iter().flat_map(|row| row.iter().map(|v| v * gain)));
    let row = |i: usize| i * cols..(i + 1) * cols;
    // Causal initialisation, mirror boundary: row 0 from every row.
    let z_n_1 = z.powi(n as i32 - 1);
    let mut first_row: Vec<f64> = (0..cols)
        .map(|j| c[j] + z_n_1 * c[(n - 1) * cols + j])
        .collect();
    let mut z_i = z;
    for i in 1..n - 1 {
        for (j, v) in first_row.iter_mut().enumerate() {
            *v += z_i * (c[i * cols + j] + z_n_1 * c[(n - 1 - i) * cols + j]);
        }
        z_i *= z;
    }
    let scale = 1.0 / (1.0 - z_n_1 * z_n_1);
    c[row(0)]
        .iter_mut()
        .zip(&first_row)
        .for_each(|(d, v)| *d = v * scale);
    for i in 1..n {
        let (before, here) = c.split_at_mut(i * cols);
        let previous = &before[(i - 1) * cols..];
        here[..cols]
            .iter_mut()
            .zip(previous)
            .for_each(|(d, p)| *d += z * p);
    }
    // Anti-causal initialisation, mirror boundary.
    let factor = z / (z * z - 1.0);
    for j in 0..cols {
        c[(n - 1) * cols + j] = (z * c[(n - 2) * cols + j] + c[(n - 1) * cols + j]) * factor;
    }
    for i in (0..n - 1).rev() {
        let (here, after) = c.split_at_mut((i + 1) * cols);
        let next = &after[..cols];
        here[i * cols..]
            .iter_mut()
            .zip(next)
            .for_each(|(d, nx)| *d = z * (nx - *d));
    }
}
