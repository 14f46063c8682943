//! Test helpers shared by the kernels' brute-force checks.

/// A reproducible stream of uniform numbers in [0, 1) (a 64-bit LCG).
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next_unit(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    /// `n` voxels, each true with probability `density`.
    pub fn mask(&mut self, n: usize, density: f64) -> Vec<bool> {
        (0..n).map(|_| self.next_unit() < density).collect()
    }

    /// `n` voxels of classes `0..classes`.
    pub fn labels(&mut self, n: usize, classes: u16) -> Vec<u16> {
        (0..n)
            .map(|_| (self.next_unit() * classes as f64) as u16)
            .collect()
    }
}

/// (x, y, z) of linear index `i`.
pub fn coords(i: usize, dims: [usize; 3]) -> [usize; 3] {
    [
        i % dims[0],
        (i / dims[0]) % dims[1],
        i / (dims[0] * dims[1]),
    ]
}

/// Squared distance (with spacing) from `point` to the nearest of `targets`; infinite if none.
pub fn nearest_squared(point: [usize; 3], targets: &[[usize; 3]], spacing: [f64; 3]) -> f64 {
    targets
        .iter()
        .map(|t| {
            (0..3)
                .map(|a| (spacing[a] * (point[a] as f64 - t[a] as f64)).powi(2))
                .sum::<f64>()
        })
        .fold(f64::INFINITY, f64::min)
}

/// Coordinates of the true voxels of `mask`.
pub fn points(mask: &[bool], dims: [usize; 3]) -> Vec<[usize; 3]> {
    (0..mask.len())
        .filter(|&i| mask[i])
        .map(|i| coords(i, dims))
        .collect()
}
