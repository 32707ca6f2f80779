//! The race models away from the engine: their file (the pit-stop model), `pitwall train`
//! (fitting them on real races), `pitwall evaluate` (scoring a run), their scores, and FastF1's
//! tables as the truth both are checked against. "Race" means the views that run in the engine
//! (`pitwall_dataflows::race`); these are the models' offline side.

pub mod evaluate;
pub mod history;
pub mod model_file;
pub mod scores;
pub mod train;
pub mod truth;
