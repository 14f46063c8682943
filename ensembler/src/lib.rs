//! Ranking, ensembling, prediction into each input's own geometry, and evaluation reports.
//! So far: [`evaluate`] (metrics of label maps against references, [`overlay`] pictures),
//! [`rank`] (algorithms by validation Dice), [`ensemble`] (members, combination,
//! prediction; [`combine`] takes its classes one at a time), [`crossval`] (greedy selection and clean-ups on cross-validation, the
//! clean-ups themselves in [`cleanup`]) and
//! [`report`] (`report.html`: everything a work dir holds, on one page) and [`predict`]
//! (label and probability maps written for a folder or a datalist).
//! Single-bundle prediction is the bundle runtime's (`autoseg_templates::bundle::runtime`).

pub mod cleanup;
mod cleanup_scores;
pub mod combine;
pub mod crossval;
pub mod ensemble;
mod error;
pub mod evaluate;
pub mod overlay;
pub mod predict;
pub mod rank;
pub mod report;
