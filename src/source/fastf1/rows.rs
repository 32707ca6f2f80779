//! Cuts unpacked CSV text into rows, as the csv crate would, but faster: a line with no quote
//! and no carriage return inside is found with `memchr` and cut at its commas later
//! ([`super::row::Split`]); any other row is cut by `csv_core` itself. Each row knows the line
//! it starts on (the header is line 1), for dead letters. Both the sequential reader and the
//! dealer of a merged file read through here.

use super::row::{trim, Fields, Split};
use crate::ingest::InputError;
use csv::ByteRecord;
use std::io::Read;
use std::ops::Range;

/// The header of the file, read through the same row cutter as the rows.
pub(super) fn header(rows: &mut Rows<impl Read>, origin: &str) -> Result<ByteRecord, InputError> {
    loop {
        match rows.next() {
            Next::Row(row) => {
                let mut record = ByteRecord::new();
                let bytes = &rows.buf[row.range.clone()];
                if row.quoted {
                    csv_record(bytes, &mut record);
                } else {
                    let split = Split::new(bytes);
                    for i in 0..split.len() {
                        record.push_field(split.get(i).unwrap_or_default());
                    }
                }
                return Ok(record);
            }
            Next::Blank => continue,
            Next::End => return Err(InputError::new(format!("{origin}: empty file, no header"))),
            Next::Failed(e) => {
                return Err(InputError::new(format!(
                    "{origin}: cannot read the header: {e}"
                )))
            }
        }
    }
}

/// A row's fields: cut at its commas when it is plain, else parsed by csv into `record` (a
/// quoted row, or a header wider than [`Split::MAX`]).
pub(super) fn row_fields<'a>(
    bytes: &'a [u8],
    quoted: bool,
    width: usize,
    record: &'a mut ByteRecord,
) -> RowFields<'a> {
    if quoted || width > Split::MAX {
        csv_record(bytes, record);
        RowFields::Record(record)
    } else {
        RowFields::Split(Split::new(bytes))
    }
}

// A short-lived stack value, one row at a time: boxing the large variant would allocate per row.
#[allow(clippy::large_enum_variant)]
pub(super) enum RowFields<'a> {
    Split(Split<'a>),
    Record(&'a ByteRecord),
}

impl Fields for RowFields<'_> {
    fn len(&self) -> usize {
        match self {
            RowFields::Split(s) => s.len(),
            RowFields::Record(r) => Fields::len(*r),
        }
    }
    fn get(&self, idx: usize) -> Option<&[u8]> {
        match self {
            RowFields::Split(s) => s.get(idx),
            RowFields::Record(r) => Fields::get(*r, idx),
        }
    }
}

/// One row as csv would parse it, into `record`.
pub(super) fn csv_record(bytes: &[u8], record: &mut ByteRecord) {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bytes);
    if !matches!(reader.read_byte_record(record), Ok(true)) {
        record.clear();
    }
}

/// What the row cutter found next.
pub(super) enum Next {
    Row(RowSpan),
    Blank,
    End,
    Failed(std::io::Error),
}

pub(super) struct RowSpan {
    pub(super) range: Range<usize>,
    pub(super) line: u64,
    pub(super) quoted: bool,
}

/// Cuts unpacked text into rows: lines found with `memchr`, and a row with a quote or a bare
/// carriage return in it cut by `csv_core`, exactly as the csv crate would.
pub(super) struct Rows<R> {
    input: R,
    pub(super) buf: Vec<u8>,
    pos: usize,
    eof: bool,
    failed: Option<std::io::Error>,
    /// The line `buf[pos]` is on.
    line: u64,
}

impl<R: Read> Rows<R> {
    const READ: usize = 256 * 1024;

    pub(super) fn new(input: R) -> Rows<R> {
        Rows {
            input,
            buf: Vec::with_capacity(2 * Self::READ),
            pos: 0,
            eof: false,
            failed: None,
            line: 1,
        }
    }

    /// Reads more after what is left; `false` at the end of the input (or a read error).
    fn refill(&mut self) -> bool {
        if self.eof {
            return false;
        }
        self.buf.drain(..self.pos);
        self.pos = 0;
        let have = self.buf.len();
        self.buf.resize(have + Self::READ, 0);
        loop {
            match self.input.read(&mut self.buf[have..]) {
                Ok(0) => {
                    self.buf.truncate(have);
                    self.eof = true;
                    return false;
                }
                Ok(n) => {
                    self.buf.truncate(have + n);
                    return true;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // What was read before stays; a partial last row is dropped, as csv does.
                    self.buf.truncate(have);
                    if let Some(nl) = memchr::memrchr(b'\n', &self.buf[self.pos..]) {
                        self.buf.truncate(self.pos + nl + 1);
                    } else {
                        self.buf.truncate(self.pos);
                    }
                    self.failed = Some(e);
                    self.eof = true;
                    return false;
                }
            }
        }
    }

    pub(super) fn next(&mut self) -> Next {
        loop {
            let rest = &self.buf[self.pos..];
            let (line_end, next) = match memchr::memchr(b'\n', rest) {
                Some(nl) => (nl, nl + 1),
                None if !self.eof => {
                    self.refill();
                    continue;
                }
                None if rest.is_empty() => {
                    return match self.failed.take() {
                        Some(e) => Next::Failed(e),
                        None => Next::End,
                    }
                }
                None => (rest.len(), rest.len()),
            };
            let mut body = &rest[..line_end];
            if let Some(stripped) = body.strip_suffix(b"\r") {
                body = stripped;
            }
            if memchr::memchr2(b'"', b'\r', body).is_some() {
                return self.quoted_row();
            }
            let line = self.line;
            let start = self.pos;
            let len = body.len();
            self.pos += next;
            self.line += 1;
            if trim(&self.buf[start..start + len]).is_empty() {
                return Next::Blank;
            }
            return Next::Row(RowSpan {
                range: start..start + len,
                line,
                quoted: false,
            });
        }
    }

    /// A row cut by `csv_core` from `pos`, reading more while it is not whole.
    fn quoted_row(&mut self) -> Next {
        let mut fields = vec![0u8; 1024];
        let mut ends = vec![0usize; 64];
        loop {
            let mut reader = csv_core::Reader::new();
            let (mut at, mut outlen, mut nends) = (self.pos, 0, 0);
            loop {
                let input = &self.buf[at..];
                if input.is_empty() && !self.eof {
                    break; // an empty input would tell csv_core the file has ended
                }
                let (result, nin, nout, nend) =
                    reader.read_record(input, &mut fields[outlen..], &mut ends[nends..]);
                at += nin;
                outlen += nout;
                nends += nend;
                match result {
                    csv_core::ReadRecordResult::OutputFull => fields.resize(fields.len() * 2, 0),
                    csv_core::ReadRecordResult::OutputEndsFull => ends.resize(ends.len() * 2, 0),
                    csv_core::ReadRecordResult::InputEmpty => {}
                    csv_core::ReadRecordResult::Record | csv_core::ReadRecordResult::End => {
                        // As the sequential reader: one blank field is a blank line.
                        let blank = nends <= 1 && trim(&fields[..outlen]).is_empty();
                        return self.take_quoted(at, blank);
                    }
                }
            }
            self.refill();
        }
    }

    fn take_quoted(&mut self, end: usize, blank: bool) -> Next {
        let start = self.pos;
        let line = self.line;
        // A "\r\n" terminator: csv_core may stop after the "\r"; the "\n" belongs to it.
        let mut stop = end;
        if stop > start && self.buf[stop - 1] == b'\r' && self.buf.get(stop) == Some(&b'\n') {
            stop += 1;
        }
        self.line += memchr::memchr_iter(b'\n', &self.buf[start..stop]).count() as u64;
        self.pos = stop;
        if blank {
            return Next::Blank;
        }
        let mut body = &self.buf[start..stop];
        while let Some(b) = body
            .strip_suffix(b"\n")
            .or_else(|| body.strip_suffix(b"\r"))
        {
            body = b;
        }
        Next::Row(RowSpan {
            range: start..start + body.len(),
            line,
            quoted: true,
        })
    }
}
