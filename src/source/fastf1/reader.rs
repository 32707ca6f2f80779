//! The streaming CSV reader: one file, plain or gzipped, row by row, bad rows as dead letters.

use super::row::{parse_row, Columns, Fields};
use super::rows::{header, row_fields, Next, Rows};
use crate::ingest::{InputError, RecordSource, SourceStats};
use csv::ByteRecord;
use flate2::read::MultiGzDecoder;
use pitwall_dataflows::{DeadLetter, DriverId, Ingest};
use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::atomic::Ordering;
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
    rows: Rows<Box<dyn Read + Send>>,
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
        let mut rows = Rows::new(input);
        let header = header(&mut rows, &origin)?;
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
            rows,
            record: ByteRecord::new(),
            cols,
            fixed_driver,
            filter,
            stats,
            last_line: 1,
            done: false,
        })
    }

    /// Where each field is, from the header.
    pub(super) fn columns(&self) -> &Columns {
        &self.cols
    }

    /// The next record or dead letter, with car_data's chunk time; `None` at the end.
    pub(super) fn next_row(&mut self) -> Option<(Ingest, Option<i64>)> {
        loop {
            if self.done {
                return None;
            }
            let span = match self.rows.next() {
                Next::Row(span) => span,
                Next::Blank => continue,
                Next::End => {
                    self.done = true;
                    return None;
                }
                Next::Failed(e) => {
                    self.done = true;
                    // What was read before stays; the failure is just past the last good row.
                    self.stats.rows.fetch_add(1, Ordering::Relaxed);
                    return Some((
                        Ingest::Dead(Box::new(DeadLetter {
                            origin: self.origin.clone(),
                            partition: None,
                            position: self.last_line + 1,
                            field: None,
                            reason: "input truncated or unreadable".into(),
                            detail: e.to_string(),
                            raw: Vec::new(),
                        })),
                        None,
                    ));
                }
            };
            self.last_line = span.line;
            self.stats.rows.fetch_add(1, Ordering::Relaxed);
            let bytes = &self.rows.buf[span.range.clone()];
            let fields = &row_fields(bytes, span.quoted, self.cols.width, &mut self.record);
            return Some(match parse_row(fields, &self.cols, self.fixed_driver) {
                Ok(row) => {
                    if self
                        .filter
                        .as_ref()
                        .is_some_and(|f| !f.contains(&row.sample.driver))
                    {
                        self.stats.filtered.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    (Ingest::Record(row.sample), row.session_time_ms)
                }
                Err(e) => (dead_letter(&self.origin, span.line, fields, e), None),
            });
        }
    }
}

/// A row that cannot be a record: its line, what is wrong, and its fields joined by commas.
pub(super) fn dead_letter(
    origin: &str,
    line: u64,
    fields: &dyn Fields,
    e: crate::format::validate::FieldError,
) -> Ingest {
    let raw = (0..fields.len())
        .filter_map(|i| fields.get(i))
        .collect::<Vec<_>>()
        .join(&b',');
    let detail = if e.value.is_empty() {
        String::new()
    } else {
        format!("value {:?}", e.value)
    };
    Ingest::Dead(Box::new(DeadLetter {
        origin: origin.to_string(),
        partition: None,
        position: line,
        field: Some(e.field.to_string()),
        reason: e.reason,
        detail,
        raw,
    }))
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
