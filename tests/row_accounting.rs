//! Every row of a FastF1 file is exactly one of: a record, a dead letter or a row left out by
//! the drivers filter; and which one is known in advance. Checked on random files made of real
//! rows of the 2023 race, some spoiled in ways a feed can spoil them, with blank lines and a
//! random `--drivers` filter, read by the real reader and row parser.

mod common;

use common::real_rows;
use pitwall::ingest::{RecordSource, SourceStats};
use pitwall::source::fastf1::CsvFile;
use pitwall_dataflows::{DriverId, Ingest};
use proptest::prelude::*;
use std::collections::HashSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Ways a row is spoiled; each makes it a dead letter. The column order is the real file's:
/// Date,SessionTime,Driver,DriverNumber,LapNumber,RPM,Speed,nGear,Throttle,Brake,DRS.
#[derive(Clone, Copy, Debug)]
enum Spoil {
    Field(usize, &'static str),
    DropLastField,
    ExtraField,
}

fn spoil() -> impl Strategy<Value = Spoil> {
    prop_oneof![
        Just(Spoil::Field(0, "2023-02-31T13:01:02.424")),
        Just(Spoil::Field(0, "2023-05-28T13:01:60.000")),
        Just(Spoil::Field(0, "yesterday")),
        Just(Spoil::Field(2, "")),
        Just(Spoil::Field(2, "V E R")),
        Just(Spoil::Field(4, "-3")),
        Just(Spoil::Field(5, "99999")),
        Just(Spoil::Field(5, "NaN")),
        Just(Spoil::Field(6, "abc")),
        Just(Spoil::Field(6, "-5")),
        Just(Spoil::Field(7, "1.5")),
        Just(Spoil::Field(8, "inf")),
        Just(Spoil::Field(9, "maybe")),
        Just(Spoil::Field(10, "16")),
        Just(Spoil::DropLastField),
        Just(Spoil::ExtraField),
    ]
}

/// What one line of the generated file is.
#[derive(Clone, Debug)]
enum Line {
    Good(usize),
    Spoiled(usize, Spoil),
    Blank(&'static str),
}

fn line() -> impl Strategy<Value = Line> {
    prop_oneof![
        8 => (0..3000usize).prop_map(Line::Good),
        3 => (0..3000usize, spoil()).prop_map(|(i, s)| Line::Spoiled(i, s)),
        1 => prop::sample::select(vec!["", "  ", "\t"]).prop_map(Line::Blank),
    ]
}

fn render(l: &Line) -> String {
    let rows = &real_rows().1;
    match l {
        Line::Good(i) => rows[*i].clone(),
        Line::Blank(b) => b.to_string(),
        Line::Spoiled(i, s) => {
            let mut fields: Vec<&str> = rows[*i].split(',').collect();
            match s {
                Spoil::Field(k, v) => fields[*k] = v,
                Spoil::DropLastField => {
                    fields.pop();
                }
                Spoil::ExtraField => fields.push("7"),
            }
            fields.join(",")
        }
    }
}

fn driver_of(row: &str) -> DriverId {
    DriverId::new(row.split(',').nth(2).expect("a Driver field")).expect("a driver code")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn every_row_is_a_record_a_dead_letter_or_filtered(
        lines in prop::collection::vec(line(), 0..300),
        keep in prop::option::of(prop::collection::hash_set(
            prop::sample::select(vec!["VER", "HAM", "LEC", "SAI", "ALO", "PER", "OCO"]), 1..4)),
        batch in 1usize..500,
        crlf in any::<bool>(),
        last_newline in any::<bool>(),
    ) {
        let (header, rows) = real_rows();
        let newline = if crlf { "\r\n" } else { "\n" };
        let mut text = header.clone();
        for l in &lines {
            text.push_str(newline);
            text.push_str(&render(l));
        }
        if last_newline {
            text.push_str(newline);
        }
        let filter: Option<HashSet<DriverId>> = keep.map(|k| {
            k.iter().map(|d| DriverId::new(d).expect("a driver code")).collect()
        });
        let stats = Arc::new(SourceStats::default());
        let mut file = CsvFile::from_reader(
            "generated.csv".into(),
            Box::new(std::io::Cursor::new(text.into_bytes())),
            None,
            filter.clone().map(Arc::new),
            stats.clone(),
        ).expect("the real header");
        let mut items = Vec::new();
        while file.fill(&mut items, batch) {}

        // What each line must become, in order (the header is line 1).
        let (mut want_records, mut want_dead, mut want_filtered) = (Vec::new(), Vec::new(), 0u64);
        for (n, l) in lines.iter().enumerate() {
            let line_no = n as u64 + 2;
            match l {
                Line::Blank(_) => {}
                Line::Spoiled(..) => want_dead.push(line_no),
                Line::Good(i) => {
                    let d = driver_of(&rows[*i]);
                    if filter.as_ref().is_none_or(|f| f.contains(&d)) {
                        let date = rows[*i].split(',').next().expect("a Date");
                        want_records.push((d, date.to_string()));
                    } else {
                        want_filtered += 1;
                    }
                }
            }
        }
        let mut records = Vec::new();
        let mut dead = Vec::new();
        for item in &items {
            match item {
                Ingest::Record(s) => records.push((
                    s.driver,
                    pitwall::format::timefmt::format_utc_ms(s.ts_ms)[..23].to_string(),
                )),
                Ingest::Dead(d) => dead.push(d.position),
                Ingest::Replay(_) => prop_assert!(false, "a file replays nothing"),
            }
        }
        prop_assert_eq!(&records, &want_records);
        prop_assert_eq!(&dead, &want_dead);
        prop_assert_eq!(stats.filtered.load(Ordering::Relaxed), want_filtered);
        prop_assert_eq!(
            stats.rows.load(Ordering::Relaxed),
            (records.len() + dead.len()) as u64 + want_filtered
        );
    }
}
