//! One FastF1 CSV row to a record: where the columns are, and each field checked against the
//! shared limits of [`crate::format::validate`], without allocating.

use crate::format::timefmt::{parse_timedelta_ms, parse_utc_ms};
use crate::format::validate::{self, FieldError, Limit};
use crate::ingest::InputError;
use csv::ByteRecord;
use pitwall_dataflows::{DriverId, Telemetry};

const REQUIRED: [&str; 7] = ["Date", "RPM", "Speed", "nGear", "Throttle", "Brake", "DRS"];
/// Columns FastF1 writes that pitwall reads nothing from.
const KNOWN_UNUSED: [&str; 7] = [
    "SessionTime",
    "DriverNumber",
    "Source",
    "Status",
    "Distance",
    "Z",
    "",
];

/// Where each column is, by FastF1's names.
#[derive(Clone, Debug)]
pub(super) struct Columns {
    pub(super) date: usize,
    pub(super) driver: Option<usize>,
    pub(super) rpm: usize,
    pub(super) speed: usize,
    pub(super) gear: usize,
    pub(super) throttle: usize,
    pub(super) brake: usize,
    pub(super) drs: usize,
    pub(super) lap: Option<usize>,
    /// car_data's session-relative `Time` of the feed chunk.
    pub(super) session_time: Option<usize>,
    pub(super) brake_temp: Option<usize>,
    pub(super) x: Option<usize>,
    pub(super) y: Option<usize>,
    pub(super) width: usize,
}

impl Columns {
    pub(super) fn from_header(
        header: &ByteRecord,
        origin: &str,
    ) -> Result<(Columns, Vec<String>), InputError> {
        let names: Vec<String> = header
            .iter()
            .map(|f| {
                String::from_utf8_lossy(f)
                    .trim()
                    .trim_start_matches('\u{feff}')
                    .to_string()
            })
            .collect();
        let find = |name: &str| names.iter().position(|n| n == name);
        let missing: Vec<&str> = REQUIRED
            .iter()
            .copied()
            .filter(|n| find(n).is_none())
            .collect();
        if missing.len() == REQUIRED.len() {
            return Err(InputError::new(format!(
                "{origin}: not FastF1 telemetry: none of the required columns {} (found: {})",
                REQUIRED.join(","),
                names.join(",")
            )));
        }
        if !missing.is_empty() {
            return Err(InputError::new(format!(
                "{origin}: missing required column(s) {} (found: {})",
                missing.join(","),
                names.join(",")
            )));
        }
        let req = |name: &str| find(name).unwrap_or_default();
        let cols = Columns {
            date: req("Date"),
            driver: find("Driver"),
            rpm: req("RPM"),
            speed: req("Speed"),
            gear: req("nGear"),
            throttle: req("Throttle"),
            brake: req("Brake"),
            drs: req("DRS"),
            lap: find("LapNumber"),
            session_time: find("Time"),
            brake_temp: find("BrakeTemp"),
            x: find("X"),
            y: find("Y"),
            width: names.len(),
        };
        let used = [
            "Date",
            "Driver",
            "RPM",
            "Speed",
            "nGear",
            "Throttle",
            "Brake",
            "DRS",
            "LapNumber",
            "Time",
            "BrakeTemp",
            "X",
            "Y",
        ];
        let unknown = names
            .iter()
            .filter(|n| !used.contains(&n.as_str()) && !KNOWN_UNUSED.contains(&n.as_str()))
            .cloned()
            .collect();
        Ok((cols, unknown))
    }
}

fn field_error(field: &'static str, reason: impl Into<String>, value: &[u8]) -> FieldError {
    FieldError::new(field, reason, String::from_utf8_lossy(value))
}

/// The fields of one row, however it was split: a csv [`ByteRecord`] or a plain line cut at
/// its commas ([`Split`]).
pub(super) trait Fields {
    fn len(&self) -> usize;
    fn get(&self, idx: usize) -> Option<&[u8]>;
}

impl Fields for ByteRecord {
    fn len(&self) -> usize {
        ByteRecord::len(self)
    }
    fn get(&self, idx: usize) -> Option<&[u8]> {
        ByteRecord::get(self, idx)
    }
}

/// A line with no quote in it, cut at its commas without copying: what csv would make of it.
pub(super) struct Split<'a> {
    line: &'a [u8],
    /// Where each field ends (its comma, or the end of the line); the first `len` are used.
    ends: [u32; Split::MAX],
    len: usize,
}

impl<'a> Split<'a> {
    /// Fields past this are counted, not kept: the row has the wrong number of fields anyway.
    pub(super) const MAX: usize = 64;

    pub(super) fn new(line: &'a [u8]) -> Split<'a> {
        // A plain loop: commas come every few bytes, where memchr's search for a rare byte
        // costs more than it saves.
        let mut ends = [0u32; Split::MAX];
        let mut len = 0;
        for (at, &b) in line.iter().enumerate() {
            if b == b',' {
                if len < Split::MAX {
                    ends[len] = at as u32;
                }
                len += 1;
            }
        }
        if len < Split::MAX {
            ends[len] = line.len() as u32;
        }
        Split {
            line,
            ends,
            len: len + 1,
        }
    }
}

impl Fields for Split<'_> {
    fn len(&self) -> usize {
        self.len
    }
    fn get(&self, idx: usize) -> Option<&[u8]> {
        if idx >= self.len.min(Split::MAX) {
            return None;
        }
        let start = if idx == 0 {
            0
        } else {
            self.ends[idx - 1] as usize + 1
        };
        self.line.get(start..self.ends[idx] as usize)
    }
}

#[inline]
fn get<'r>(
    rec: &'r (impl Fields + ?Sized),
    idx: usize,
    field: &'static str,
) -> Result<&'r [u8], FieldError> {
    match rec.get(idx).map(trim) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(field_error(field, "missing", b"")),
    }
}

#[inline]
pub(super) fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &v[start..end]
}

/// `[-]digits[.digits]` with at most 15 digits in all, exactly as `f64::from_str` reads it:
/// the digits make an integer below 2^53 and the divisor a power of ten below 10^23, both
/// exact in an f64, so the one correctly rounded division is the correctly rounded value.
/// Anything else (exponents, `inf`, long numbers) is `None`, for the general parser.
#[inline]
pub(super) fn plain_decimal(raw: &[u8]) -> Option<f64> {
    const POW10: [f64; 16] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
    ];
    let (negative, digits) = match raw.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, raw),
    };
    let (mut mantissa, mut count, mut fraction, mut seen_dot) = (0u64, 0usize, 0usize, false);
    for &b in digits {
        match b {
            b'0'..=b'9' => {
                mantissa = mantissa * 10 + (b - b'0') as u64;
                count += 1;
                fraction += seen_dot as usize;
                if count > 15 {
                    return None;
                }
            }
            b'.' if !seen_dot => seen_dot = true,
            _ => return None,
        }
    }
    // "5." and ".5" are numbers to f64::from_str too; "." and "" are not.
    if count == 0 {
        return None;
    }
    let value = mantissa as f64 / POW10[fraction];
    Some(if negative { -value } else { value })
}

#[inline]
fn number(raw: &[u8], limit: &Limit) -> Result<f64, FieldError> {
    let value = plain_decimal(raw)
        .or_else(|| {
            std::str::from_utf8(raw)
                .ok()
                .and_then(|s| s.parse::<f64>().ok())
        })
        .ok_or_else(|| field_error(limit.field, "not a number", raw))?;
    limit.check(value).map_err(|mut e| {
        e.value = String::from_utf8_lossy(raw).into_owned();
        e
    })
}

fn boolean(raw: &[u8], field: &'static str) -> Result<bool, FieldError> {
    match raw {
        b"1" | b"True" | b"true" | b"TRUE" | b"1.0" => Ok(true),
        b"0" | b"False" | b"false" | b"FALSE" | b"0.0" => Ok(false),
        _ => Err(field_error(field, "not a boolean (0/1/True/False)", raw)),
    }
}

/// A parsed row: the record, and car_data's session-relative chunk time when present.
pub(super) struct Row {
    pub(super) sample: Telemetry,
    pub(super) session_time_ms: Option<i64>,
}

pub(super) fn parse_row(
    rec: &(impl Fields + ?Sized),
    c: &Columns,
    fixed: Option<DriverId>,
) -> Result<Row, FieldError> {
    if rec.len() != c.width {
        return Err(FieldError {
            field: "row",
            reason: "wrong number of fields".into(),
            value: format!("{} fields, header has {}", rec.len(), c.width),
        });
    }
    let driver = match (fixed, c.driver) {
        (Some(d), _) => d,
        (None, Some(idx)) => {
            let raw = get(rec, idx, "Driver")?;
            DriverId::from_bytes(raw).ok_or_else(|| {
                field_error("Driver", "not a driver code (1-8 letters/digits)", raw)
            })?
        }
        (None, None) => return Err(field_error("Driver", "missing", b"")),
    };
    let date = get(rec, c.date, "Date")?;
    let ts_ms =
        parse_utc_ms(date).ok_or_else(|| field_error("Date", "not an ISO 8601 UTC time", date))?;
    let speed = number(get(rec, c.speed, "Speed")?, &validate::SPEED)?;
    let rpm = number(get(rec, c.rpm, "RPM")?, &validate::RPM)?;
    let gear = number(get(rec, c.gear, "nGear")?, &validate::GEAR)?;
    let throttle = number(get(rec, c.throttle, "Throttle")?, &validate::THROTTLE)?;
    let brake = boolean(get(rec, c.brake, "Brake")?, "Brake")?;
    let drs = number(get(rec, c.drs, "DRS")?, &validate::DRS)?;
    let lap = match c.lap.and_then(|i| rec.get(i)).map(trim) {
        None | Some(b"") => None,
        Some(raw) => Some(number(raw, &validate::LAP)? as u16),
    };
    let optional = |idx: Option<usize>, limit: &Limit| match idx.and_then(|i| rec.get(i)).map(trim)
    {
        None | Some(b"") => Ok(None),
        Some(raw) => number(raw, limit).map(|v| Some(v as f32)),
    };
    let brake_temp = optional(c.brake_temp, &validate::BRAKE_TEMP)?;
    let x = optional(c.x, &validate::X)?;
    let y = optional(c.y, &validate::Y)?;
    let session_time_ms = match c.session_time.and_then(|i| rec.get(i)).map(trim) {
        None | Some(b"") => None,
        Some(raw) => Some(
            parse_timedelta_ms(raw).ok_or_else(|| field_error("Time", "not a timedelta", raw))?,
        ),
    };
    Ok(Row {
        sample: Telemetry {
            driver,
            ts_ms,
            speed: speed as f32,
            rpm: rpm as f32,
            throttle: throttle as f32,
            brake_temp,
            position: x.zip(y).map(|(x, y)| [x, y]),
            lap,
            gear: gear as u8,
            drs: drs as u8,
            brake,
        },
        session_time_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whenever the short path reads a number, it is bit for bit what `f64::from_str`
        /// reads; and it reads every plain decimal a feed writes.
        #[test]
        fn plain_decimals_are_read_exactly_as_the_general_parser_reads_them(
            text in "-?[0-9]{0,9}(\\.[0-9]{0,8})?|[-+.0-9eE]{0,12}",
        ) {
            let general = text.parse::<f64>().ok();
            match plain_decimal(text.as_bytes()) {
                Some(v) => prop_assert_eq!(Some(v.to_bits()), general.map(f64::to_bits)),
                None => {
                    let digits = text.bytes().filter(u8::is_ascii_digit).count();
                    let plain = text.trim_start_matches('-').bytes().all(|b| b.is_ascii_digit() || b == b'.')
                        && text.matches('.').count() <= 1
                        && text.matches('-').count() <= 1;
                    prop_assert!(!(plain && (1..=15).contains(&digits)), "{text:?} was not read");
                }
            }
        }
    }

    #[test]
    fn a_line_is_cut_at_its_commas_as_csv_cuts_it() {
        let split = Split::new(b"a,,b c, d ,");
        let fields: Vec<&[u8]> = (0..split.len()).filter_map(|i| split.get(i)).collect();
        assert_eq!(fields, [&b"a"[..], b"", b"b c", b" d ", b""]);
        let wide = vec![b','; 100];
        let split = Split::new(&wide);
        assert_eq!(split.len(), 101, "fields past the limit are counted");
        assert_eq!(split.get(Split::MAX), None);
    }
}
