//! One typed configuration, loaded from `config/pitwall.toml` (embedded) or `--config PATH`,
//! then overridden by flags, and validated before anything starts.
//!
//! Every section's struct is here, at the bottom floor; the modules that use a section add
//! its methods (`SimConfig::validate` in `source/sim/mod.rs`, `KafkaConfig::client` in `kafka/`).

use pitwall_dataflows::config::{AlertConfig, GearConfig, Invalid, WheelSpinConfig, WindowConfig};
use pitwall_dataflows::race::RaceConfig;
use pitwall_dataflows::DetectorConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::OnceLock;

/// The configuration shipped with pitwall.
pub const DEFAULT_TOML: &str = include_str!("../config/pitwall.toml");

/// `[engine]`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    pub epoch_ms: i64,
    pub batch: usize,
    pub progress_interval_ms: u64,
    /// With several processes: a peer silent this long is lost and the process stops (ms).
    pub peer_timeout_ms: u64,
    /// After SIGINT/SIGTERM: past this (ms), a run still blocked (a broker or peer gone)
    /// exits non-zero at once, saying what was not flushed.
    pub stop_grace_ms: u64,
}

/// `[http]`: how much the query store keeps, and what one client may take of the server.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Where `pitwall run` serves the query API unless `--http` says otherwise; `off` for none.
    pub address: String,
    /// Points kept per driver for the series endpoints.
    pub points_per_driver: usize,
    /// Window aggregates kept per driver.
    pub windows_per_driver: usize,
    /// Recent alerts kept.
    pub max_alerts: usize,
    /// A request's header must have arrived this long after the connection opened or went
    /// idle, or the connection is closed (slow or idle clients).
    pub header_read_timeout_ms: u64,
    /// Connections served at once; past this one is answered 503 and closed.
    pub max_connections: usize,
    /// Longest request line and header, bytes (at least 8192); longer is answered 431.
    pub max_header_bytes: usize,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PitwallConfig {
    pub engine: EngineConfig,
    pub simulator: SimConfig,
    pub windows: WindowConfig,
    pub wheel_spin: WheelSpinConfig,
    pub gear: GearConfig,
    pub alerts: AlertConfig,
    pub race: RaceConfig,
    pub kafka: KafkaConfig,
    pub http: HttpConfig,
}

/// `[simulator]`. Its defaults are the embedded `config/pitwall.toml`'s; the car's gear ratios
/// and wheel radius are `[wheel_spin]`'s (one car model for the simulator and the detector).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SimConfig {
    pub cars: usize,
    /// Laps of the race; `None`: the circuit's race distance; 0 = no end (benchmarks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub laps: Option<u32>,
    /// Samples per second per car.
    pub rate_hz: f64,
    pub seed: u64,
    /// Event time of the start, epoch ms.
    pub start_ms: i64,
    /// The circuit raced, a key of `circuits`.
    pub circuit: String,
    /// Overall ratios of gears 1..=8: `wheel_spin.gear_ratios`.
    #[serde(skip)]
    pub gear_ratios: [f64; 8],
    /// `wheel_spin.wheel_radius_m`.
    #[serde(skip)]
    pub wheel_radius_m: f64,
    /// Chance, per corner exit, of a traction loss.
    pub traction_loss_chance: f64,
    /// Chance, per lap, of a skipped gear under full load (lugging).
    pub lugging_chance: f64,
    /// Chance, per lap, of a missed upshift (over-rev).
    pub over_rev_chance: f64,
    /// Chance, per lap, of a glitch gear value in the feed (two samples).
    pub glitch_gear_chance: f64,
    /// Chance that a race without a red flag has rain (from the seed's own rain generator).
    pub rain_chance: f64,
    /// Grip on a fully wet track, share of the dry grip: on slicks, on intermediates.
    pub wet_grip_slick: f64,
    pub wet_grip_intermediate: f64,
    /// Traction losses at corner exits on a fully wet track, times the dry chance: on slicks,
    /// on intermediates.
    pub wet_spin_slick: f64,
    pub wet_spin_intermediate: f64,
    /// The circuits the simulator knows, by name.
    pub circuits: std::collections::BTreeMap<String, CircuitConfig>,
}

/// `[simulator.circuits.NAME]`: one circuit's layout, pit lane and overtaking.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CircuitConfig {
    /// Lap length, m, and the race distance in laps.
    pub lap_m: f64,
    pub laps: u32,
    /// Drag-limited top speed, km/h (reached only on a long enough straight), and with DRS.
    pub top_kmh: f64,
    pub drs_top_kmh: f64,
    /// Corners as `[apex distance from the line m, apex speed km/h]`.
    pub corners: Vec<[f64; 2]>,
    /// DRS zones as `[from m, to m]` (a zone may run across the line).
    pub drs_zones: Vec<[f64; 2]>,
    /// Pit lane: the speed limit, where it starts before the line, where the boxes and its
    /// end are after the line (m).
    pub pit_limit_kmh: f64,
    pub pit_entry_before_line_m: f64,
    pub pit_box_after_line_m: f64,
    pub pit_exit_after_line_m: f64,
    /// Chance, per lap spent held up behind a slower car, of passing it.
    pub overtake_chance: f64,
}

impl Default for SimConfig {
    fn default() -> Self {
        PitwallConfig::default().simulator
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Topics {
    /// Keyed by driver id, so one driver's samples stay on one partition, in order.
    pub telemetry: TopicSpec,
    /// Partition by severity: high 0, medium 1, low 2; keyed by alert id.
    pub alerts: TopicSpec,
    pub predictions: TopicSpec,
    /// Laps and pit stops, keyed by `driver:lap` (a newer row for a lap replaces the older).
    pub laps: TopicSpec,
    /// Window aggregates, keyed by driver.
    pub windows: TopicSpec,
    /// Messages the engine could not use: the original bytes, with the reason in headers.
    pub dead_letters: TopicSpec,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProducerSettings {
    pub acks: String,
    pub compression: String,
    pub linger_ms: u32,
    pub batch_size: u32,
    pub retries: u32,
    /// How long a message may wait for delivery; 0 = for ever (the engine's sinks: nothing is
    /// given up while a broker is away).
    pub message_timeout_ms: u32,
    /// Requests in flight per broker connection (`max.in.flight.requests.per.connection`).
    pub max_in_flight: u32,
    /// `enable.idempotence`.
    pub idempotence: bool,
    /// `queue.buffering.max.kbytes`: what waits in librdkafka's queue at most; a full queue
    /// makes the sender wait.
    pub queue_max_kbytes: u32,
    /// `queue.buffering.max.messages`.
    pub queue_max_messages: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConsumerSettings {
    pub session_timeout_ms: u32,
    /// Messages a worker takes from its consumer per activation.
    pub poll_batch: usize,
    pub fetch_wait_max_ms: u32,
    pub fetch_min_bytes: u32,
    /// `fetch.max.bytes`: the most one fetch answer carries.
    pub fetch_max_bytes: u32,
    pub max_partition_fetch_bytes: u32,
    /// `queued.max.messages.kbytes`: prefetched messages waiting for the worker, at most.
    pub queued_max_kbytes: u32,
    /// `queued.min.messages`: per partition, prefetched messages librdkafka aims to keep.
    pub queued_min_messages: u32,
    /// `fetch.queue.backoff.ms`: how soon a partition whose queue was full is fetched again.
    pub fetch_queue_backoff_ms: u32,
    /// Records handed to the dataflow and not yet through its sinks, at most (backpressure).
    pub max_in_dataflow: usize,
}

/// `[kafka.transactions]`: with them on, the engine's outputs for a range of completed epochs
/// and the input offsets they were derived from commit in one Kafka transaction, and a restart
/// resumes from the last one (exactly once); off, outputs are sent at once and offsets
/// committed once they are acknowledged (at least once).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TransactionSettings {
    pub enabled: bool,
    /// How often a transaction is committed (what a `read_committed` consumer waits for).
    pub commit_interval_ms: u64,
    /// `transaction.timeout.ms`: the broker aborts a transaction left open this long (a
    /// process that died with one open).
    pub timeout_ms: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Overridden by `--brokers` or `PITWALL_BROKERS`.
    pub brokers: String,
    /// The engine's consumer group: its committed offsets are where a restart resumes.
    pub group_id: String,
    pub replication_factor: i32,
    /// How long a request to a broker may go unanswered before its connection is dropped and
    /// the partitions it led are looked up again (librdkafka's `socket.timeout.ms`): a broker
    /// whose cable is cut sends no reset, and only this tells.
    pub request_timeout_ms: u32,
    /// After a restart, re-read each partition from its start to rebuild the detectors'
    /// state exactly, emitting nothing for what was committed before.
    pub rebuild_state: bool,
    /// A file prefix for the per-alert latency breakdown (`bench kafka`); empty: off.
    pub alert_timings: String,
    pub topics: Topics,
    /// `pitwall produce`, the replay producer.
    pub producer: ProducerSettings,
    /// The engine's sinks of windows, race views and dead letters.
    pub sink: ProducerSettings,
    /// The engine's alerts: their own producer, sent at once.
    pub alert_sink: ProducerSettings,
    pub consumer: ConsumerSettings,
    /// Exactly-once outputs: Kafka transactions that commit outputs and input offsets at once.
    pub transactions: TransactionSettings,
    /// librdkafka properties given to every client, after pitwall's own settings (`-X`).
    pub properties: BTreeMap<String, toml::Value>,
}

impl Default for KafkaConfig {
    /// `[kafka]` of the embedded `config/pitwall.toml`.
    fn default() -> Self {
        PitwallConfig::default().kafka
    }
}

/// The embedded file, parsed once.
fn embedded() -> &'static (toml::Table, PitwallConfig) {
    static EMBEDDED: OnceLock<(toml::Table, PitwallConfig)> = OnceLock::new();
    EMBEDDED.get_or_init(|| {
        let table: toml::Table = toml::from_str(DEFAULT_TOML)
            .unwrap_or_else(|e| panic!("the embedded config/pitwall.toml: {e}"));
        let cfg = PitwallConfig::from_table(table.clone())
            .unwrap_or_else(|e| panic!("the embedded config/pitwall.toml: {e}"));
        (table, cfg)
    })
}

impl Default for PitwallConfig {
    /// The embedded `config/pitwall.toml`: the one place every default is written.
    fn default() -> Self {
        embedded().1.clone()
    }
}

/// Lays `over` onto `base`, table by table: what `over` leaves out keeps `base`'s value.
fn merge(base: &mut toml::Table, over: toml::Table) {
    for (key, value) in over {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

impl PitwallConfig {
    /// Loads `path`, or the embedded default when `None`.
    pub fn load(path: Option<&Path>) -> Result<PitwallConfig, ConfigError> {
        let (cfg, origin) = match path {
            None => (
                PitwallConfig::default(),
                "embedded config/pitwall.toml".to_string(),
            ),
            Some(p) => {
                let origin = p.display().to_string();
                let text = std::fs::read_to_string(p).map_err(|e| ConfigError::Read {
                    origin: origin.clone(),
                    source: e,
                })?;
                let cfg = PitwallConfig::parse(&text).map_err(|e| ConfigError::Parse {
                    origin: origin.clone(),
                    source: Box::new(e),
                })?;
                (cfg, origin)
            }
        };
        cfg.validate()
            .map_err(|source| ConfigError::Invalid { origin, source })?;
        Ok(cfg)
    }

    /// A configuration file's text, every key it leaves out taken from the embedded file;
    /// unknown keys are errors. Not validated.
    pub fn parse(text: &str) -> Result<PitwallConfig, toml::de::Error> {
        let over: toml::Table = toml::from_str(text)?;
        let mut table = embedded().0.clone();
        merge(&mut table, over);
        PitwallConfig::from_table(table)
    }

    fn from_table(table: toml::Table) -> Result<PitwallConfig, toml::de::Error> {
        let mut cfg: PitwallConfig = toml::Value::Table(table).try_into()?;
        // One car model: the simulator drives the car the wheel-spin detector judges.
        cfg.simulator.gear_ratios = cfg.wheel_spin.gear_ratios;
        cfg.simulator.wheel_radius_m = cfg.wheel_spin.wheel_radius_m;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<(), Invalid> {
        if self.engine.epoch_ms <= 0 {
            return Err(Invalid::new("engine.epoch_ms", "must be positive"));
        }
        if self.engine.batch == 0 {
            return Err(Invalid::new("engine.batch", "must be at least 1"));
        }
        if self.http.header_read_timeout_ms == 0 || self.http.max_connections == 0 {
            return Err(Invalid::new(
                "http.header_read_timeout_ms",
                "and http.max_connections must be positive",
            ));
        }
        if self.http.max_header_bytes < 8192 {
            return Err(Invalid::new(
                "http.max_header_bytes",
                "must be at least 8192",
            ));
        }
        self.simulator.validate()?;
        self.kafka.validate()?;
        self.detectors().validate()
    }

    pub fn detectors(&self) -> DetectorConfig {
        DetectorConfig {
            windows: self.windows.clone(),
            wheel_spin: self.wheel_spin.clone(),
            gear: self.gear.clone(),
            alerts: self.alerts.clone(),
            race: self.race.clone(),
            finish_replayed: false,
        }
    }
}

/// A configuration that cannot be used: the run does not start (exit code 2).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config {origin}: cannot read: {source}")]
    Read {
        origin: String,
        source: std::io::Error,
    },
    #[error("config {origin}: {source}")]
    Parse {
        origin: String,
        source: Box<toml::de::Error>,
    },
    #[error("config {origin}: {source}")]
    Invalid { origin: String, source: Invalid },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_file_is_the_built_in_default() {
        let shipped = PitwallConfig::load(None).unwrap();
        assert_eq!(shipped, PitwallConfig::default());
    }

    #[test]
    fn the_detectors_built_in_defaults_are_the_shipped_file() {
        // pitwall-dataflows cannot read this file; its Default impls must agree with it.
        assert_eq!(
            PitwallConfig::default().detectors(),
            DetectorConfig::default()
        );
    }

    #[test]
    fn a_partial_file_keeps_the_shipped_values_of_what_it_leaves_out() {
        let cfg = PitwallConfig::parse(
            "[engine]\nbatch = 7\n[kafka.topics]\nalerts = { name = \"a\", partitions = 3 }\n",
        )
        .unwrap();
        let shipped = PitwallConfig::default();
        assert_eq!(cfg.engine.batch, 7);
        assert_eq!(cfg.engine.epoch_ms, shipped.engine.epoch_ms);
        assert_eq!(cfg.kafka.topics.alerts.name, "a");
        assert_eq!(cfg.kafka.topics.telemetry, shipped.kafka.topics.telemetry);
        assert_eq!(cfg.simulator.gear_ratios, shipped.wheel_spin.gear_ratios);
    }

    #[test]
    fn unknown_keys_and_bad_values_are_named() {
        let err = PitwallConfig::parse("[gear]\nluging_max_rpm = 1.0\n").unwrap_err();
        assert!(err.to_string().contains("luging_max_rpm"), "{err}");
        let cfg = PitwallConfig::parse("[alerts]\nbrake_temp_high_c = 100.0\n").unwrap();
        assert!(cfg
            .validate()
            .unwrap_err()
            .to_string()
            .contains("brake_temp_high_c"));
        let cfg = PitwallConfig::parse("[windows]\ntumbling_ms = []\n").unwrap();
        assert!(cfg
            .validate()
            .unwrap_err()
            .to_string()
            .contains("tumbling_ms"));
    }
}
