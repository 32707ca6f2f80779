//! The streaming CSV reader: one file, plain or gzipped, row by row, bad rows as dead letters.

use super::row::{parse_row, trim, Columns};
use crate::ingest::{InputError, RecordSource, SourceStats};
use csv::ByteRecord;
use flate2::read::MultiGzDecoder;
use pitwall_dataflows::{DeadLetter, DriverId, Ingest};
use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::Arc;

pub(super) fn open_maybe_gzip(path: &Path) -> Result<Box<dyn Read + Send>, InputError> {
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
        Self::from_reader(origin, open_maybe_gzip(path)?, fixed_driver, filter, stats)
    }

    /// The same over any reader of CSV text (already unpacked); `origin` names it in errors
    /// and dead letters. `open` and the fuzz targets go through here.
    pub fn from_reader(
        origin: String,
        input: Box<dyn Read + Send>,
        fixed_driver: Option<DriverId>,
        filter: Option<Arc<HashSet<DriverId>>>,
        stats: Arc<SourceStats>,
    ) -> Result<CsvFile, InputError> {
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .has_headers(false)
            .buffer_capacity(256 * 1024)
            .from_reader(input);
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

    /// The line the record just read starts on. csv gives the line where its read began,
    /// which is that of the first blank line before it when there are some; so count back
    /// from where it ended instead: the line after it, less the newlines inside its fields.
    /// (A last record with no newline after it, blank lines before it, is one line early.)
    fn record_line(&self) -> u64 {
        let began = self
            .record
            .position()
            .map_or(self.last_line + 1, |p| p.line());
        let inside: u64 = self
            .record
            .iter()
            .map(|f| f.iter().filter(|&&b| b == b'\n').count() as u64)
            .sum();
        self.reader
            .position()
            .line()
            .saturating_sub(inside + 1)
            .max(began)
    }

    /// The next record or dead letter, with car_data's chunk time; `None` at the end.
    pub(super) fn next_row(&mut self) -> Option<(Ingest, Option<i64>)> {
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
            let line = self.record_line();
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

    #[test]
    fn dead_letters_name_the_line_of_the_row_after_blank_lines() {
        // Found by tests/row_accounting.rs: after blank lines a dead letter named the first
        // blank line, not the row.
        let csv = "Date,Driver,RPM,Speed,nGear,Throttle,Brake,DRS\n\
            \n\
            \n\
            2023-05-28T13:01:02.424,V E R,10179,232,6,0,1,1\n\
            2023-05-28T13:01:02.664,VER,10179,232,6,0,1,1\n\
            \r\n\
            2023-05-28T13:01:02.904,VER,abc,232,6,0,1,1\n\
            \"2023-05-28T13:01:03.144\",\"VER\",\"1\n2\",232,6,0,1,1\n\
            \n\
            2023-05-28T13:01:03.384,VER,10179,-1,6,0,1,1\n";
        let mut file = CsvFile::from_reader(
            "blank.csv".into(),
            Box::new(std::io::Cursor::new(csv.as_bytes().to_vec())),
            None,
            None,
            Arc::default(),
        )
        .unwrap();
        let mut items = Vec::new();
        while file.fill(&mut items, 16) {}
        let dead: Vec<u64> = items
            .iter()
            .filter_map(|i| match i {
                Ingest::Dead(d) => Some(d.position),
                _ => None,
            })
            .collect();
        assert_eq!(dead, [4, 7, 8, 11]);
    }
}
