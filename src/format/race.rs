//! The JSON shapes of race intelligence: a lap (`laps.jsonl`, the laps topic, `/api/laps`), a
//! pit stop and a prediction (the seeds' shape on `f1-predictions`). They are read back by
//! `pitwall evaluate`, so they deserialize too.

use super::timefmt::format_utc_ms;
use pitwall_dataflows::race::{LapRow, PitRow, Prediction};
use serde::{Deserialize, Serialize};

/// One driver's lap: the columns first, then what the views used to judge it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LapMessage {
    pub driver_id: String,
    pub lap: u16,
    pub lap_start_ms: i64,
    pub lap_end_ms: i64,
    pub lap_time_ms: i64,
    pub position: u16,
    pub gap_to_leader_ms: i64,
    pub interval_ms: i64,
    pub pit_in: bool,
    pub pit_out: bool,
    pub stint: u16,
    pub tyre_age_laps: u16,
    pub field_state: String,
    pub pit_count: u16,
    /// The car ahead at the line.
    pub ahead: Option<String>,
    /// The last lap, closed by distance rather than by a new lap number.
    pub closed_by_distance: bool,
    pub clean: bool,
    pub best_ms: i64,
    pub pace_permille: u32,
    pub stint_loss_ms: i64,
    pub top_speed_kmh: u16,
    pub top_gear: u8,
    pub max_rpm: u32,
    pub stationary_ms: i64,
    pub spin_samples: u32,
    pub samples: u32,
    pub field_pace_permille: u32,
    pub field_spin_per_10k: u32,
    pub rivals_pitted: u16,
    /// The position the car would hold after a stop on the next lap, under this lap's field
    /// state, and the pit loss (ms) that assumes (learned from the race's stops).
    #[serde(default)]
    pub rejoin_position_if_pit: u16,
    #[serde(default)]
    pub pit_loss_ms: i64,
    /// The same position for a stop under green and under a SC/VSC, whatever this lap's state
    /// (a safety car called during the next lap makes the second the one to read).
    #[serde(default)]
    pub rejoin_position_if_pit_green: u16,
    #[serde(default)]
    pub rejoin_position_if_pit_neutralised: u16,
    /// The losses (ms) those two assume, and how many of the race's stops each was learned
    /// from (0: the prior alone).
    #[serde(default)]
    pub pit_loss_green_ms: i64,
    #[serde(default)]
    pub pit_loss_neutralised_ms: i64,
    #[serde(default)]
    pub pit_loss_green_stops: u16,
    #[serde(default)]
    pub pit_loss_neutralised_stops: u16,
    /// The car ahead this one is within reach of undercutting (green laps only): the interval
    /// to it is less than `undercut_gain_ms`, what that car's tyres lost on this lap.
    #[serde(default)]
    pub undercut_on: Option<String>,
    #[serde(default)]
    pub undercut_gain_ms: i64,
    pub message_type: String,
}

impl LapMessage {
    pub fn new(r: &LapRow) -> Self {
        let l = &r.lap;
        let d = &l.done;
        LapMessage {
            driver_id: d.driver.to_string(),
            lap: d.lap,
            lap_start_ms: d.start_ms,
            lap_end_ms: d.end_ms,
            lap_time_ms: l.lap_time_ms,
            position: r.standing.position,
            gap_to_leader_ms: r.standing.gap_to_leader_ms,
            interval_ms: r.standing.interval_ms,
            pit_in: l.pit_in,
            pit_out: l.pit_out,
            stint: l.stint,
            tyre_age_laps: l.tyre_age_laps,
            field_state: r.field.state.as_str().to_string(),
            pit_count: l.pit_count,
            ahead: r.standing.ahead.map(|a| a.to_string()),
            closed_by_distance: d.by_distance,
            clean: l.clean,
            best_ms: l.best_ms,
            pace_permille: l.pace_permille,
            stint_loss_ms: l.stint_loss_ms,
            top_speed_kmh: d.max_speed_kmh,
            top_gear: d.top_gear,
            max_rpm: d.max_rpm,
            stationary_ms: d.stationary_ms,
            spin_samples: d.spin_samples,
            samples: d.samples,
            field_pace_permille: r.field.pace_permille,
            field_spin_per_10k: r.field.spin_per_10k,
            rivals_pitted: r.field.rivals_pitted,
            rejoin_position_if_pit: r.rejoin_if_pit().0,
            pit_loss_ms: r.rejoin_if_pit().1,
            rejoin_position_if_pit_green: r.standing.rejoin_green,
            rejoin_position_if_pit_neutralised: r.standing.rejoin_neutralised,
            pit_loss_green_ms: r.standing.pit_loss.green_ms,
            pit_loss_neutralised_ms: r.standing.pit_loss.neutralised_ms,
            pit_loss_green_stops: r.standing.pit_loss.green_stops,
            pit_loss_neutralised_stops: r.standing.pit_loss.neutralised_stops,
            undercut_on: r.undercut_on().map(|d| d.to_string()),
            undercut_gain_ms: r.standing.undercut_gain_ms,
            message_type: "lap".into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PitStopMessage {
    pub driver_id: String,
    /// The in-lap.
    pub lap: u16,
    pub pit_in_ms: i64,
    pub pit_out_ms: i64,
    pub stationary_ms: i64,
    pub field_state: String,
    /// Pit-lane time, ms.
    pub pit_lane_ms: i64,
    pub limit_kmh: u16,
    pub message_type: String,
}

impl PitStopMessage {
    pub fn new(p: &PitRow) -> Self {
        let s = &p.stop;
        PitStopMessage {
            driver_id: s.driver.to_string(),
            lap: s.lap,
            pit_in_ms: s.pit_in_ms,
            pit_out_ms: s.pit_out_ms,
            stationary_ms: s.stationary_ms,
            field_state: p.field_state.as_str().to_string(),
            pit_lane_ms: s.pit_out_ms - s.pit_in_ms,
            limit_kmh: s.limit_kmh,
            message_type: "pit_stop".into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PredictionValue {
    pub probability: f64,
    /// high: four times the base rate or more; medium: twice.
    pub risk_level: String,
    /// The event's base rate over the same horizon (the history's for crashes and tyre
    /// failures at this lap, the training races' for pit stops).
    #[serde(default)]
    pub base_rate: f64,
}

/// The seeds' prediction message, plus the lap it was issued at.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PredictionMessage {
    /// End of the lap, ISO 8601 UTC.
    pub timestamp: String,
    pub model_type: String,
    pub prediction: PredictionValue,
    pub confidence: f64,
    pub driver_id: String,
    pub message_type: String,
    pub lap: u16,
    /// On the predictions topic: this prediction was taken back with no replacement.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub retracted: bool,
}

impl PredictionMessage {
    pub fn new(p: &Prediction) -> Self {
        PredictionMessage {
            timestamp: format_utc_ms(p.ts_ms),
            model_type: p.model.as_str().to_string(),
            prediction: PredictionValue {
                probability: p.probability(),
                risk_level: p.risk_level().to_string(),
                base_rate: p.base_rate(),
            },
            confidence: p.confidence(),
            driver_id: p.driver.to_string(),
            message_type: "prediction".into(),
            lap: p.lap,
            retracted: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pitwall_dataflows::race::ModelType;
    use pitwall_dataflows::DriverId;

    #[test]
    fn a_prediction_has_the_seeds_shape() {
        let p = Prediction {
            driver: DriverId::new("VER").unwrap(),
            lap: 12,
            model: ModelType::PitStopProbability,
            ts_ms: 1_685_278_862_424,
            probability_ppm: 712_500,
            confidence_ppm: 712_500,
            base_ppm: 50_000,
        };
        let json = serde_json::to_value(PredictionMessage::new(&p)).unwrap();
        assert_eq!(json["model_type"], "pit_stop_probability");
        assert_eq!(json["prediction"]["probability"], 0.7125);
        assert_eq!(json["prediction"]["risk_level"], "high");
        assert_eq!(json["prediction"]["base_rate"], 0.05);
        assert_eq!(json["confidence"], 0.7125);
        assert_eq!(json["driver_id"], "VER");
        assert_eq!(json["message_type"], "prediction");
        assert_eq!(json["lap"], 12);
        assert_eq!(json["timestamp"], "2023-05-28T13:01:02.424Z");
    }
}
