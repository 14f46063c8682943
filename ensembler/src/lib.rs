//! Ranking, ensembling, prediction into each input's own geometry, and evaluation reports.
//! So far: [`evaluate`] (metrics of label maps against references, [`overlay`] pictures),
//! [`rank`] (algorithms by validation Dice) and [`ensemble`] (members, combination,
//! prediction).
//! Single-bundle prediction is the bundle runtime's (`autoseg_templates::bundle::runtime`).

pub mod ensemble;
pub mod evaluate;
pub mod overlay;
pub mod rank;
