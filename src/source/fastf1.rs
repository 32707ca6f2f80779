//! FastF1 CSV files, plain or gzipped: the merged form with a `Driver` column, and FastF1's
//! own per-driver `car_data` export, alone or as a folder merged in time order.
//!
//! Rows are parsed from reused byte records without allocating. A row that cannot become a
//! record is a [`DeadLetter`] naming the line, the field and what was wrong; the file goes on.
//! A file that cannot be read at all, or lacks the required columns, is an [`InputError`].

use crate::format::timefmt::{parse_timedelta_ms, parse_utc_ms};
use crate::format::validate::{self, FieldError, Limit};
use crate::ingest::{InputError, RecordSource, SourceStats};
use csv::ByteRecord;
use flate2::read::MultiGzDecoder;
use pitwall_dataflows::record::DriverMap;
use pitwall_dataflows::{DeadLetter, DriverId, Ingest, Telemetry};
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

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
struct Columns {
    date: usize,
    driver: Option<usize>,
    rpm: usize,
    speed: usize,
    gear: usize,
    throttle: usize,
    brake: usize,
    drs: usize,
    lap: Option<usize>,
    /// car_data's session-relative `Time` of the feed chunk.
    session_time: Option<usize>,
    brake_temp: Option<usize>,
    x: Option<usize>,
    y: Option<usize>,
    width: usize,
}

impl Columns {
    fn from_header(
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

fn get<'r>(rec: &'r ByteRecord, idx: usize, field: &'static str) -> Result<&'r [u8], FieldError> {
    match rec.get(idx).map(trim) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(field_error(field, "missing", b"")),
    }
}

fn trim(v: &[u8]) -> &[u8] {
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

fn number(raw: &[u8], limit: &Limit) -> Result<f64, FieldError> {
    let value = std::str::from_utf8(raw)
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
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
struct Row {
    sample: Telemetry,
    session_time_ms: Option<i64>,
}

fn parse_row(rec: &ByteRecord, c: &Columns, fixed: Option<DriverId>) -> Result<Row, FieldError> {
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

fn open_maybe_gzip(path: &Path) -> Result<Box<dyn Read + Send>, InputError> {
    let file = File::open(path)
        .map_err(|e| InputError::new(format!("{}: cannot open: {e}", path.display())))?;
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    let magic = reader
        .fill_buf()
        .map_err(|e| InputError::new(format!("{}: cannot read: {e}", path.display())))?;
    if magic.starts_with(&[0x1f, 0x8b]) {
        Ok(Box::new(BufReader::with_capacity(
            256 * 1024,
            MultiGzDecoder::new(reader),
        )))
    } else {
        Ok(Box::new(reader))
    }
}

/// One CSV file, read row by row.
pub struct CsvFile {
    origin: String,
    reader: csv::Reader<Box<dyn Read + Send>>,
    record: ByteRecord,
    cols: Columns,
    fixed_driver: Option<DriverId>,
    filter: Option<Arc<HashSet<DriverId>>>,
    stats: Arc<SourceStats>,
    last_line: u64,
    done: bool,
}

impl CsvFile {
    /// Opens the file and checks its header; `fixed_driver` is the driver of a per-driver file.
    pub fn open(
        path: &Path,
        fixed_driver: Option<DriverId>,
        filter: Option<Arc<HashSet<DriverId>>>,
        stats: Arc<SourceStats>,
    ) -> Result<CsvFile, InputError> {
        let origin = path.display().to_string();
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .has_headers(false)
            .buffer_capacity(256 * 1024)
            .from_reader(open_maybe_gzip(path)?);
        let mut header = ByteRecord::new();
        match reader.read_byte_record(&mut header) {
            Ok(true) => {}
            Ok(false) => return Err(InputError::new(format!("{origin}: empty file, no header"))),
            Err(e) => {
                return Err(InputError::new(format!(
                    "{origin}: cannot read the header: {e}"
                )))
            }
        }
        let (cols, unknown) = Columns::from_header(&header, &origin)?;
        if cols.driver.is_none() && fixed_driver.is_none() {
            return Err(InputError::new(format!(
                "{origin}: no Driver column, and the file name does not say the driver \
                 (expected FastF1's car_data_<year>_driver_<number>.csv[.gz])"
            )));
        }
        if !unknown.is_empty() {
            tracing::warn!(file = %origin, columns = ?unknown, "ignoring unknown columns");
        }
        Ok(CsvFile {
            origin,
            reader,
            record: ByteRecord::new(),
            cols,
            fixed_driver,
            filter,
            stats,
            last_line: 1,
            done: false,
        })
    }

    fn dead(&self, line: u64, field: Option<&str>, reason: String, detail: String) -> Ingest {
        let raw = self.record.iter().collect::<Vec<_>>().join(&b',');
        Ingest::Dead(Box::new(DeadLetter {
            origin: self.origin.clone(),
            partition: None,
            position: line,
            field: field.map(str::to_string),
            reason,
            detail,
            raw,
        }))
    }

    /// The next record or dead letter, with car_data's chunk time; `None` at the end.
    fn next_row(&mut self) -> Option<(Ingest, Option<i64>)> {
        loop {
            if self.done {
                return None;
            }
            match self.reader.read_byte_record(&mut self.record) {
                Ok(true) => {}
                Ok(false) => {
                    self.done = true;
                    return None;
                }
                Err(e) => {
                    self.done = true;
                    // I/O errors carry no position: the failure is just past the last good line.
                    let line = self.last_line + 1;
                    self.stats
                        .rows
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    self.record.clear();
                    return Some((
                        self.dead(
                            line,
                            None,
                            "input truncated or unreadable".into(),
                            e.to_string(),
                        ),
                        None,
                    ));
                }
            }
            let line = self
                .record
                .position()
                .map_or(self.last_line + 1, |p| p.line());
            self.last_line = line;
            if self.record.len() == 1 && self.record.get(0).is_some_and(|f| trim(f).is_empty()) {
                continue; // blank line
            }
            self.stats
                .rows
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Some(
                match parse_row(&self.record, &self.cols, self.fixed_driver) {
                    Ok(row) => {
                        if self
                            .filter
                            .as_ref()
                            .is_some_and(|f| !f.contains(&row.sample.driver))
                        {
                            self.stats
                                .filtered
                                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            continue;
                        }
                        (Ingest::Record(row.sample), row.session_time_ms)
                    }
                    Err(e) => {
                        let detail = if e.value.is_empty() {
                            String::new()
                        } else {
                            format!("value {:?}", e.value)
                        };
                        (self.dead(line, Some(e.field), e.reason, detail), None)
                    }
                },
            );
        }
    }
}

impl RecordSource for CsvFile {
    fn fill(&mut self, out: &mut Vec<Ingest>, max: usize) -> bool {
        for _ in 0..max {
            match self.next_row() {
                Some((item, _)) => out.push(item),
                None => return false,
            }
        }
        true
    }
}

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
fn read_table(
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

/// Checks a file's header: an error when it is not FastF1 telemetry, else whether it has a
/// `Driver` column (merged form) rather than being per-driver car_data.
pub fn check_header(path: &Path) -> Result<bool, InputError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(open_maybe_gzip(path)?);
    let mut header = ByteRecord::new();
    let origin = path.display().to_string();
    match reader.read_byte_record(&mut header) {
        Ok(true) => Ok(Columns::from_header(&header, &origin)?.0.driver.is_some()),
        Ok(false) => Err(InputError::new(format!("{origin}: empty file, no header"))),
        Err(e) => Err(InputError::new(format!(
            "{origin}: cannot read the header: {e}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn shared(rel: &str) -> PathBuf {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/data/monaco-2023")
            .join(rel);
        assert!(
            p.exists(),
            "{} is missing: the tests read the real race from ../shared/data",
            p.display()
        );
        p
    }

    fn drain(mut src: impl RecordSource) -> Vec<Ingest> {
        let mut out = Vec::new();
        while src.fill(&mut out, 4096) {}
        out
    }

    fn records(items: &[Ingest]) -> Vec<Telemetry> {
        items
            .iter()
            .filter_map(|i| match i {
                Ingest::Record(s) => Some(*s),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn car_data_folder_gives_the_merged_files_records_for_the_same_rows() {
        let stats = Arc::new(SourceStats::default());
        let merged = records(&drain(
            CsvFile::open(
                &shared("monaco_2023_race.csv.gz"),
                None,
                None,
                stats.clone(),
            )
            .unwrap(),
        ));
        assert_eq!(merged.len(), 513_360);
        let files = car_data_files(&shared("fastf1-car-data")).unwrap();
        assert_eq!(files.len(), 20);
        let folder = drain(load_car_data(&files, None, stats).unwrap());
        assert!(
            folder.iter().all(|i| matches!(i, Ingest::Record(_))),
            "no dead letters"
        );
        assert_eq!(folder.len(), 20 * 39_892);
        let (first, last) = (merged[0].ts_ms, merged[merged.len() - 1].ts_ms);
        let key = |s: &Telemetry| (s.driver, s.ts_ms);
        let mut from_folder: Vec<Telemetry> = records(&folder)
            .into_iter()
            .filter(|s| (first..=last).contains(&s.ts_ms))
            .collect();
        let mut merged = merged;
        from_folder.sort_by_key(key);
        merged.sort_by_key(key);
        assert_eq!(from_folder.len(), merged.len());
        // Same drivers, times, channels and lap numbers, row for row.
        for (a, b) in from_folder.iter().zip(&merged) {
            assert_eq!(a, b);
        }
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::File::create(&p)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        p
    }

    #[test]
    fn bad_rows_become_dead_letters_with_line_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let csv = "Date,Driver,RPM,Speed,nGear,Throttle,Brake,DRS,LapNumber,Weather\n\
            2023-05-28T13:01:02.424,VER,10179,232,6,0,1,1,,sunny\n\
            2023-05-28T13:01:02.664,VER,abc,232,6,0,1,1,,sunny\n\
            2023-05-28T13:01:02.904,VER,10179,-5,6,0,1,1,,sunny\n\
            2023-05-28T13:01:03.144,VER,10179,232,6,0,1\n\
            not a date,VER,10179,232,6,0,1,1,,sunny\n\
            2023-05-28T13:01:03.384,,10179,232,6,0,1,1,,sunny\n\
            2023-05-28T13:01:03.624,VER,99999,232,6,0,1,1,,sunny\n\
            2023-05-28T13:01:03.864,VER,10179,232,-1,0,1,1,,sunny\n\
            2023-05-28T13:01:04.104,VER,10179,232,6,0,maybe,1,,sunny\n\
            2023-05-28T13:01:04.344,VER,10179,232,128,104,0,12,3,sunny\n\
            \n\
            2023-05-28T13:01:04.584,VER,10179,232,7,50,0,12,3.0,sunny\n";
        let path = write(dir.path(), "merged.csv", csv);
        let stats = Arc::new(SourceStats::default());
        let items = drain(CsvFile::open(&path, None, None, stats.clone()).unwrap());
        let dead: Vec<String> = items
            .iter()
            .filter_map(|i| match i {
                Ingest::Dead(d) => Some(format!("{} {}", d.position, d.reason_key())),
                _ => None,
            })
            .collect();
        assert_eq!(
            dead,
            [
                "3 RPM: not a number",
                "4 Speed: out of range 0..=450",
                "5 row: wrong number of fields",
                "6 Date: not an ISO 8601 UTC time",
                "7 Driver: missing",
                "8 RPM: out of range 0..=20000",
                "9 nGear: out of range 0..=255",
                "10 Brake: not a boolean (0/1/True/False)",
            ]
        );
        let good = records(&items);
        assert_eq!(good.len(), 3, "the valid rows around the bad ones are kept");
        assert_eq!(
            (good[1].gear, good[1].throttle, good[1].lap),
            (128, 104.0, Some(3))
        );
        assert_eq!(good[2].lap, Some(3));
        assert_eq!(stats.rows.load(std::sync::atomic::Ordering::Relaxed), 11);
    }

    #[test]
    fn a_truncated_gzip_keeps_what_came_before_and_says_where_it_stopped() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::from("Date,Driver,RPM,Speed,nGear,Throttle,Brake,DRS\n");
        for i in 0..20_000 {
            text.push_str(&format!(
                "2023-05-28T13:01:{:02}.{:03},HAM,{},{},5,80,0,1\n",
                i / 1000 % 60,
                i % 1000,
                9000 + i % 997,
                150 + i % 89
            ));
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(text.as_bytes()).unwrap();
        let bytes = gz.finish().unwrap();
        let path = dir.path().join("cut.csv.gz");
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
        let items = drain(CsvFile::open(&path, None, None, Arc::default()).unwrap());
        let good = records(&items).len();
        assert!(good > 1000 && good < 20_000, "{good}");
        match items.last() {
            Some(Ingest::Dead(d)) => {
                assert_eq!(d.reason, "input truncated or unreadable");
                assert!(d.position as usize >= good, "{d}");
            }
            other => panic!("expected a dead letter at the end, got {other:?}"),
        }
    }

    #[test]
    fn unusable_files_are_errors_that_name_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let none = write(dir.path(), "none.csv", "a,b,c\n1,2,3\n");
        let err = CsvFile::open(&none, None, None, Arc::default())
            .err()
            .unwrap();
        assert!(err.0.contains("none of the required columns"), "{err}");
        let some = write(dir.path(), "some.csv", "Date,Driver,RPM,Speed\n");
        let err = CsvFile::open(&some, None, None, Arc::default())
            .err()
            .unwrap();
        assert!(
            err.0
                .contains("missing required column(s) nGear,Throttle,Brake,DRS"),
            "{err}"
        );
        let empty = write(dir.path(), "empty.csv", "");
        assert!(CsvFile::open(&empty, None, None, Arc::default())
            .err()
            .unwrap()
            .0
            .contains("empty"));
        let nodriver = write(
            dir.path(),
            "x.csv",
            "Date,RPM,Speed,nGear,Throttle,Brake,DRS\n",
        );
        assert!(CsvFile::open(&nodriver, None, None, Arc::default())
            .err()
            .unwrap()
            .0
            .contains("no Driver column"));
        assert!(car_data_files(dir.path())
            .err()
            .unwrap()
            .0
            .contains("no FastF1 car_data"));
    }

    #[test]
    fn the_drivers_filter_leaves_rows_out_and_counts_them() {
        let stats = Arc::new(SourceStats::default());
        let keep: HashSet<DriverId> = ["VER", "LEC"]
            .iter()
            .map(|d| DriverId::new(d).unwrap())
            .collect();
        let items = drain(
            CsvFile::open(
                &shared("monaco_2023_race.csv.gz"),
                None,
                Some(Arc::new(keep)),
                stats.clone(),
            )
            .unwrap(),
        );
        assert_eq!(items.len(), 2 * 25_668);
        assert_eq!(
            stats.filtered.load(std::sync::atomic::Ordering::Relaxed),
            18 * 25_668
        );
    }
}
