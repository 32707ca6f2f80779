//! FastF1's per-driver `car_data` export: a folder of files merged in time order, with the
//! drivers from `driver_info*.csv*` and lap numbers from a `*laps*.csv*` table beside them.

use super::reader::{open_maybe_gzip, CsvFile};
use super::row::trim;
use crate::format::timefmt::parse_timedelta_ms;
use crate::ingest::{InputError, RecordSource, SourceStats};
use csv::ByteRecord;
use pitwall_dataflows::record::DriverMap;
use pitwall_dataflows::{DriverId, Ingest, Telemetry};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Lap start times per driver, from FastF1's laps table.
#[derive(Default)]
struct LapTable {
    starts: DriverMap<Vec<(i64, u16)>>,
}

impl LapTable {
    fn load(path: &Path) -> Result<LapTable, InputError> {
        let mut table = LapTable::default();
        read_table(path, &["Driver", "LapNumber", "LapStartTime"], |f| {
            let driver = DriverId::from_bytes(f[0]);
            let lap = std::str::from_utf8(f[1])
                .ok()
                .and_then(|v| v.parse::<f64>().ok());
            if let (Some(driver), Some(lap), Some(start)) = (driver, lap, parse_timedelta_ms(f[2]))
            {
                table
                    .starts
                    .entry(driver)
                    .or_default()
                    .push((start, lap as u16));
            }
        })?;
        for laps in table.starts.values_mut() {
            laps.sort_unstable();
        }
        Ok(table)
    }

    /// The lap a driver is on at a session time: the last one started at or before it.
    fn lap_at(&self, driver: DriverId, session_ms: i64) -> Option<u16> {
        let laps = self.starts.get(&driver)?;
        let idx = laps.partition_point(|&(start, _)| start <= session_ms);
        idx.checked_sub(1).map(|i| laps[i].1)
    }
}

/// Car numbers to three-letter codes, from FastF1's driver_info export.
fn load_driver_info(path: &Path) -> Result<HashMap<String, DriverId>, InputError> {
    let mut map = HashMap::new();
    read_table(path, &["RacingNumber", "Tla"], |f| {
        if let (Ok(number), Some(code)) = (
            std::str::from_utf8(trim(f[0])),
            DriverId::from_bytes(trim(f[1])),
        ) {
            map.insert(number.to_string(), code);
        }
    })?;
    Ok(map)
}

/// Reads a FastF1 side table (laps, driver info): `row` gets the named columns of each row,
/// in the order asked for; a table without them is an error naming them.
pub(crate) fn read_table(
    path: &Path,
    columns: &[&str],
    mut row: impl FnMut(&[&[u8]]),
) -> Result<(), InputError> {
    let origin = path.display().to_string();
    let fail = |e: csv::Error| InputError::new(format!("{origin}: {e}"));
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(open_maybe_gzip(path)?);
    let headers = reader.byte_headers().map_err(fail)?.clone();
    let idx: Option<Vec<usize>> = columns
        .iter()
        .map(|c| headers.iter().position(|h| trim(h) == c.as_bytes()))
        .collect();
    let idx = idx.ok_or_else(|| {
        InputError::new(format!(
            "{origin}: this table needs the columns {}",
            columns.join(", ")
        ))
    })?;
    let mut rec = ByteRecord::new();
    // Side tables are small (a few thousand rows): a Vec a row is fine here.
    while reader.read_byte_record(&mut rec).map_err(fail)? {
        let fields: Vec<&[u8]> = idx
            .iter()
            .map(|&i| rec.get(i).unwrap_or_default())
            .collect();
        row(&fields);
    }
    Ok(())
}

/// The car number in `car_data_2023_driver_44.csv.gz`.
fn car_number(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    let stem = name.strip_suffix(".gz").unwrap_or(name);
    let stem = stem.strip_suffix(".csv")?;
    let number = stem.rsplit('_').next()?;
    (!number.is_empty() && number.bytes().all(|b| b.is_ascii_digit())).then(|| number.to_string())
}

fn sibling(dir: &Path, matches: impl Fn(&str) -> bool) -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(&matches))
        .collect();
    found.sort();
    found.into_iter().next()
}

fn is_csv(name: &str) -> bool {
    name.ends_with(".csv") || name.ends_with(".csv.gz")
}

/// Records loaded whole, handed out in order.
pub struct Loaded {
    items: std::vec::IntoIter<Ingest>,
}

impl RecordSource for Loaded {
    fn fill(&mut self, out: &mut Vec<Ingest>, max: usize) -> bool {
        out.extend(self.items.by_ref().take(max));
        self.items.len() > 0
    }
}

/// Loads FastF1 `car_data` files (one, or every one of a folder) into one time-ordered stream.
///
/// Drivers come from `driver_info*.csv[.gz]` beside the files (else the car number is the
/// code); lap numbers from a `*laps*.csv[.gz]` table beside them, placed in session time with
/// the session start estimated as the earliest `Date − Time` over all rows.
pub fn load_car_data(
    files: &[PathBuf],
    filter: Option<Arc<HashSet<DriverId>>>,
    stats: Arc<SourceStats>,
) -> Result<Loaded, InputError> {
    let dir = files
        .first()
        .and_then(|f| f.parent())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let info = match sibling(&dir, |n| n.starts_with("driver_info") && is_csv(n)) {
        Some(p) => load_driver_info(&p)?,
        None => HashMap::new(),
    };
    let laps = match sibling(&dir, |n| n.contains("laps") && is_csv(n)) {
        Some(p) => Some(LapTable::load(&p)?),
        None => None,
    };
    let mut records: Vec<(Telemetry, usize)> = Vec::new();
    let mut dead = Vec::new();
    let mut session_start: Option<i64> = None;
    for (file_idx, path) in files.iter().enumerate() {
        let number = car_number(path).ok_or_else(|| {
            InputError::new(format!(
                "{}: cannot tell the car from the file name (expected car_data_<year>_driver_<number>.csv[.gz])",
                path.display()
            ))
        })?;
        let driver = match info.get(&number) {
            Some(code) => *code,
            None => DriverId::new(&number)
                .map_err(|e| InputError::new(format!("{}: {e}", path.display())))?,
        };
        let mut file = CsvFile::open(path, Some(driver), filter.clone(), stats.clone())?;
        while let Some((item, session_time)) = file.next_row() {
            match item {
                Ingest::Record(s) => {
                    if let Some(t) = session_time {
                        let start = s.ts_ms - t;
                        session_start = Some(session_start.map_or(start, |m: i64| m.min(start)));
                    }
                    records.push((s, file_idx));
                }
                dead_letter => dead.push(dead_letter),
            }
        }
    }
    if let (Some(laps), Some(t0)) = (&laps, session_start) {
        for (s, _) in records.iter_mut() {
            s.lap = laps.lap_at(s.driver, s.ts_ms - t0);
        }
    }
    records.sort_by_key(|&(s, file_idx)| (s.ts_ms, file_idx));
    dead.extend(records.into_iter().map(|(s, _)| Ingest::Record(s)));
    Ok(Loaded {
        items: dead.into_iter(),
    })
}

/// Every `car_data_*.csv[.gz]` in a folder, sorted by name.
pub fn car_data_files(dir: &Path) -> Result<Vec<PathBuf>, InputError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| InputError::new(format!("{}: cannot read folder: {e}", dir.display())))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("car_data") && is_csv(n))
        })
        .collect();
    if files.is_empty() {
        return Err(InputError::new(format!(
            "{}: no FastF1 car_data_*.csv[.gz] files in this folder",
            dir.display()
        )));
    }
    files.sort();
    Ok(files)
}
