//! Ranking, ensembling, prediction into each input's own geometry, and evaluation reports.
//! Empty until its issue lands.
