//! Asynchronous successive halving (ASHA, Li et al. 2020): trials are trained to rungs of
//! growing length (r, r·η, r·η², ..., the full schedule) and paused at each; a paused trial
//! goes on to the next rung when its score there is in the top 1/η of every score recorded
//! at that rung so far, else a new trial starts. Most trials thus stop after r epochs, and a
//! budget that holds a few full-length runs tries many more configurations.

/// The rungs, in epochs, for a schedule of `epochs` starting at `first` and growing by `eta`.
pub fn rungs(first: usize, eta: usize, epochs: usize) -> Vec<usize> {
    let mut rungs = Vec::new();
    let mut r = first.max(1);
    while r < epochs {
        rungs.push(r);
        r *= eta.max(2);
    }
    rungs.push(epochs);
    rungs
}

/// The first rung when none is given: the schedule divided by η three times (three
/// halvings), at least one epoch.
pub fn default_first_rung(epochs: usize, eta: usize) -> usize {
    (epochs / eta.max(2).pow(3)).max(1)
}

/// Which paused trial to promote, if any: `scores[t]` holds trial t's score at each rung it
/// finished, `paused[t]` whether it waits at its last one. Higher rungs go first.
pub fn promotable(scores: &[Vec<f64>], paused: &[bool], rungs: usize, eta: usize) -> Option<usize> {
    for k in (0..rungs.saturating_sub(1)).rev() {
        let mut at_rung: Vec<(usize, f64)> = scores
            .iter()
            .enumerate()
            .filter_map(|(t, s)| s.get(k).map(|&v| (t, v)))
            .collect();
        at_rung.sort_by(|a, b| b.1.total_cmp(&a.1));
        let top = at_rung.len() / eta.max(2);
        let found = at_rung[..top]
            .iter()
            .map(|&(t, _)| t)
            .find(|&t| paused[t] && scores[t].len() == k + 1);
        if found.is_some() {
            return found;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rungs_grow_by_eta_up_to_the_schedule() {
        assert_eq!(rungs(1, 3, 9), vec![1, 3, 9]);
        assert_eq!(rungs(1, 3, 10), vec![1, 3, 9, 10]);
        assert_eq!(rungs(5, 3, 4), vec![4]);
        assert_eq!(default_first_rung(1000, 3), 37);
        assert_eq!(default_first_rung(9, 3), 1);
    }

    #[test]
    fn the_top_third_at_a_rung_goes_on() {
        // Two trials scored at rung 0: too few for a third to exist.
        let two = vec![vec![0.5], vec![0.7]];
        assert_eq!(promotable(&two, &[true, true], 3, 3), None);
        // A third arrives: the best of three is promoted.
        let three = vec![vec![0.5], vec![0.7], vec![0.6]];
        assert_eq!(promotable(&three, &[true, true, true], 3, 3), Some(1));
        // Once it has gone on (and is training), nobody else is promoted from rung 0.
        let moved = vec![vec![0.5], vec![0.7, 0.8], vec![0.6]];
        assert_eq!(promotable(&moved, &[true, false, true], 3, 3), None);
        // Higher rungs first: with 3 at rung 1, its best goes to rung 2.
        let high = vec![vec![0.5, 0.6], vec![0.7, 0.9], vec![0.6, 0.7], vec![0.1]];
        assert_eq!(promotable(&high, &[true, true, true, true], 3, 3), Some(1));
        // Nothing goes past the last rung.
        let done = vec![vec![0.5, 0.6, 0.7]];
        assert_eq!(promotable(&done, &[true], 3, 3), None);
    }
}
