//! One compact telemetry sample, `Copy`, the same whatever the source.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// A driver code (`VER`, `HAM`, `SIM07`, `VER#3`) held inline in eight bytes.
///
/// Interning into a fixed-width value rather than a per-run table keeps the id meaningful on
/// every worker of every process without coordination, and costs no allocation per record.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct DriverId([u8; 8]);

impl std::hash::Hash for DriverId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write_u64(u64::from_le_bytes(self.0));
    }
}

/// The increment of splitmix64's state.
pub const SPLITMIX_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// splitmix64's output for a state: well mixed, cheap, the same everywhere. Used for routing,
/// hashing and the simulator's random numbers.
pub fn splitmix64(state: u64) -> u64 {
    let mut z = state.wrapping_add(SPLITMIX_GAMMA);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Hasher for maps keyed by [`DriverId`]: one mix of the packed code.
#[derive(Default, Clone, Copy)]
pub struct DriverHasher(u64);

impl std::hash::Hasher for DriverHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ b as u64).wrapping_mul(0x100_0000_01B3);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 = splitmix64(v ^ self.0);
    }
}

/// A map keyed by driver with the cheap [`DriverHasher`].
pub type DriverMap<V> =
    std::collections::HashMap<DriverId, V, std::hash::BuildHasherDefault<DriverHasher>>;

/// Why a string cannot be a [`DriverId`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadDriverId(pub String);

impl fmt::Display for BadDriverId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "driver id {:?} must be 1 to 8 ASCII letters, digits, '_', '-' or '#'",
            self.0
        )
    }
}

impl std::error::Error for BadDriverId {}

impl DriverId {
    pub const MAX_LEN: usize = 8;

    pub fn new(code: &str) -> Result<Self, BadDriverId> {
        Self::from_bytes(code.as_bytes()).ok_or_else(|| BadDriverId(code.to_string()))
    }

    /// Parses without allocating; `None` when the bytes are not a valid code.
    pub fn from_bytes(code: &[u8]) -> Option<Self> {
        if code.is_empty() || code.len() > Self::MAX_LEN {
            return None;
        }
        let mut bytes = [0u8; 8];
        for (slot, &b) in bytes.iter_mut().zip(code) {
            if !(b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'#') {
                return None;
            }
            *slot = b;
        }
        Some(DriverId(bytes))
    }

    pub fn as_str(&self) -> &str {
        let len = self.0.iter().position(|&b| b == 0).unwrap_or(8);
        // Only ASCII is ever stored.
        std::str::from_utf8(&self.0[..len]).unwrap_or("?")
    }

    /// A well-mixed hash that is the same in every process, used to exchange records.
    pub fn route(&self) -> u64 {
        splitmix64(u64::from_le_bytes(self.0))
    }
}

impl fmt::Display for DriverId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for DriverId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DriverId({})", self.as_str())
    }
}

impl Serialize for DriverId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for DriverId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        DriverId::new(&s).map_err(serde::de::Error::custom)
    }
}

/// Gear values the car can really be in; anything above is a glitch of the feed.
pub const MAX_GEAR: u8 = 8;

/// The feed's throttle sentinel: not a real pedal position.
pub const THROTTLE_SENTINEL: f32 = 104.0;

/// One sample of one car.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Telemetry {
    pub driver: DriverId,
    /// Event time, epoch milliseconds (UTC).
    pub ts_ms: i64,
    /// km/h
    pub speed: f32,
    pub rpm: f32,
    /// 0..100 %, or the feed's 104 sentinel.
    pub throttle: f32,
    /// Measured brake disc temperature in °C, when the source has one.
    pub brake_temp: Option<f32>,
    /// Track position in metres, when the source has one.
    pub position: Option<[f32; 2]>,
    /// Lap the car is on; `None` before the start of lap 1.
    pub lap: Option<u16>,
    /// 0 = neutral, 1..=8; larger values are feed glitches kept as they came.
    pub gear: u8,
    /// Raw FastF1 DRS code: 0/1 off, 8 eligible, 10/12/14 open.
    pub drs: u8,
    pub brake: bool,
}

impl Telemetry {
    /// A car of `driver` at rest at `ts_ms`: every other field zero, `false` or `None` (no
    /// speed, rpm, throttle or brake, neutral, DRS code 0, no brake temperature, position or
    /// lap). For tests and benchmarks, which set what they are about on top of it:
    /// `Telemetry { speed: 150.0, gear: 3, ..Telemetry::at(driver, ts_ms) }`.
    pub fn at(driver: DriverId, ts_ms: i64) -> Telemetry {
        Telemetry {
            driver,
            ts_ms,
            speed: 0.0,
            rpm: 0.0,
            throttle: 0.0,
            brake_temp: None,
            position: None,
            lap: None,
            gear: 0,
            drs: 0,
            brake: false,
        }
    }

    pub fn gear_is_valid(&self) -> bool {
        self.gear <= MAX_GEAR
    }

    /// Whether the DRS flap is open (FastF1 codes 10, 12, 14).
    pub fn drs_open(&self) -> bool {
        matches!(self.drs, 10 | 12 | 14)
    }

    /// Throttle as a pedal position, `None` for the sentinel.
    pub fn throttle_pct(&self) -> Option<f32> {
        (self.throttle <= 100.0).then_some(self.throttle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_ids_round_trip_and_reject_bad_codes() {
        let ver = DriverId::new("VER").unwrap();
        assert_eq!(ver.as_str(), "VER");
        assert_eq!(DriverId::new("VER#12").unwrap().as_str(), "VER#12");
        assert!(DriverId::new("").is_err());
        assert!(DriverId::new("TOOLONGID").is_err());
        assert!(DriverId::new("V R").is_err());
        let json = serde_json::to_string(&ver).unwrap();
        assert_eq!(json, "\"VER\"");
        assert_eq!(serde_json::from_str::<DriverId>(&json).unwrap(), ver);
        assert!(serde_json::from_str::<DriverId>("\"a b\"").is_err());
    }

    #[test]
    fn a_record_stays_compact() {
        assert_eq!(std::mem::size_of::<Telemetry>(), 56);
    }

    #[test]
    fn routes_differ_between_drivers() {
        let a = DriverId::new("VER").unwrap().route();
        let b = DriverId::new("HAM").unwrap().route();
        assert_ne!(a, b);
        assert_eq!(a, DriverId::new("VER").unwrap().route());
    }
}
