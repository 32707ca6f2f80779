//! Race intelligence at the binary's edge: the pit model's file, FastF1's tables as the truth
//! a run is checked against, `pitwall train` and `pitwall evaluate`. The views themselves live
//! in `pitwall_dataflows::race`; the engine runs them like any other operator.

pub mod evaluate;
pub mod model_file;
pub mod scores;
pub mod train;
pub mod truth;
