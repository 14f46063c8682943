//! A dense table over integer keys that holds only the window of keys met so far.
//!
//! The analyzer counts values by their float-bit keys (2^16 or 2^18 possible). One case's
//! values occupy a narrow band of those keys, so a table over the band, grown on demand, costs
//! a few kilobytes per sample instead of the whole key space per sample and per case.

/// Cells for keys `lo..lo + cells.len()`; every other key reads as `empty`.
#[derive(Debug, Clone)]
pub struct Window<T: Copy> {
    lo: usize,
    cells: Vec<T>,
    empty: T,
}

impl<T: Copy> Window<T> {
    /// An empty window whose cells start as `empty`.
    pub fn new(empty: T) -> Window<T> {
        Window {
            lo: 0,
            cells: Vec::new(),
            empty,
        }
    }

    /// The cell of `key`, widening the window to reach it.
    #[inline]
    pub fn cell(&mut self, key: usize) -> &mut T {
        // One comparison: a key below the window wraps to a huge offset.
        let mut at = key.wrapping_sub(self.lo);
        if at >= self.cells.len() {
            self.widen(key);
            at = key - self.lo;
        }
        &mut self.cells[at]
    }

    /// The value of `key` (`empty` outside the window).
    #[inline]
    pub fn get(&self, key: usize) -> T {
        key.checked_sub(self.lo)
            .and_then(|i| self.cells.get(i))
            .copied()
            .unwrap_or(self.empty)
    }

    /// Keys and cells of the window, ascending.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &T)> {
        self.cells.iter().enumerate().map(|(i, c)| (self.lo + i, c))
    }

    /// Cells of the window, ascending, to change in place.
    pub fn cells_mut(&mut self) -> &mut [T] {
        &mut self.cells
    }

    /// The first key of the window.
    pub fn first_key(&self) -> usize {
        self.lo
    }

    /// Grows the window to cover `key` with slack of half its size on the side it grows, so a
    /// sample that keeps spreading costs amortised constant time per key.
    #[cold]
    fn widen(&mut self, key: usize) {
        if self.cells.is_empty() {
            self.lo = key.saturating_sub(32);
            self.cells = vec![self.empty; 64];
            if key < self.lo + self.cells.len() {
                return;
            }
        }
        let pad = (self.cells.len() / 2).max(64);
        let hi = self.lo + self.cells.len();
        let (new_lo, new_hi) = if key < self.lo {
            (key.saturating_sub(pad), hi)
        } else {
            (self.lo, key + 1 + pad)
        };
        let mut cells = vec![self.empty; new_hi - new_lo];
        cells[self.lo - new_lo..hi - new_lo].copy_from_slice(&self.cells);
        self.lo = new_lo;
        self.cells = cells;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_keep_their_values_as_the_window_grows_both_ways() {
        let mut w = Window::new(0u32);
        let keys = [1000usize, 1001, 5, 70_000, 999, 0, 1000];
        for &k in &keys {
            *w.cell(k) += 1;
        }
        assert_eq!(w.get(1000), 2);
        assert_eq!(w.get(5), 1);
        assert_eq!(w.get(70_000), 1);
        assert_eq!(w.get(0), 1);
        assert_eq!(w.get(4), 0);
        assert_eq!(w.get(1 << 30), 0);
        let total: u32 = w.iter().map(|(_, c)| *c).sum();
        assert_eq!(total, keys.len() as u32);
        let nonzero: Vec<usize> = w.iter().filter(|(_, c)| **c > 0).map(|(k, _)| k).collect();
        assert_eq!(nonzero, vec![0, 5, 999, 1000, 1001, 70_000]);
    }
}
