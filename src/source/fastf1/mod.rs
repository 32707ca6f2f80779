//! FastF1 CSV files, plain or gzipped: the merged form with a `Driver` column, and FastF1's
//! own per-driver `car_data` export, alone or as a folder merged in time order.
//!
//! Rows are parsed from reused byte records without allocating. A row that cannot become a
//! record is a [`DeadLetter`] naming the line, the field and what was wrong; the file goes on.
//! A file that cannot be read at all, or lacks the required columns, is an [`InputError`].

pub mod car_data;
pub mod reader;
pub mod row;
mod rows;
pub mod split;

pub use car_data::{car_data_files, load_car_data, Loaded};
pub use reader::{check_header, CsvFile};
pub use split::{ChunkSource, MergedFile};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{RecordSource, SourceStats};
    use pitwall_dataflows::{DriverId, Ingest, Telemetry};
    use std::collections::HashSet;
    use std::io::Write;
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

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
