//! `pitwall run` as a user meets it: the embedded default, and bad input.

use std::io::Write;
use std::process::Command;

fn pitwall(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_pitwall"))
        .env("PITWALL_HTTP", "off")
        .args(args)
        .env("RUST_LOG", "off")
        .output()
        .unwrap()
}

#[test]
fn the_default_runs_the_simulator_with_no_broker_and_no_data() {
    let dir = tempfile::tempdir().unwrap();
    // Run from an empty folder: nothing but the binary is needed.
    let out = Command::new(env!("CARGO_BIN_EXE_pitwall"))
        .env("PITWALL_HTTP", "off")
        .args(["run", "--laps", "3"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("from 20 drivers"), "{text}");
    assert!(text.contains("SIM01"), "{text}");
    assert!(text.contains("drs_activated"), "{text}");
}

#[test]
fn an_unreadable_path_is_one_clear_error_and_exit_code_2() {
    let out = pitwall(&["run", "--input", "/no/such/race.csv.gz"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: /no/such/race.csv.gz: cannot read"),
        "{err}"
    );
}

#[test]
fn a_file_with_none_of_the_columns_is_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weather.csv");
    std::fs::write(&path, "time,rain\n1,0\n").unwrap();
    let out = pitwall(&["run", "--input", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("none of the required columns"), "{err}");
}

#[test]
fn bad_flags_and_config_are_exit_code_2() {
    assert_eq!(pitwall(&["run", "--speed", "-1"]).status.code(), Some(2));
    assert_eq!(
        pitwall(&["run", "--drivers", "NOT A DRIVER"]).status.code(),
        Some(2)
    );
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[gear]\nlugging_max_rpm = \"lots\"\n").unwrap();
    let out = pitwall(&["run", "--config", cfg.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("lugging_max_rpm"));
}

#[test]
fn malformed_rows_are_dead_lettered_and_the_rest_is_processed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.csv");
    let mut f = std::fs::File::create(&path).unwrap();
    writeln!(
        f,
        "Date,Driver,RPM,Speed,nGear,Throttle,Brake,DRS,LapNumber"
    )
    .unwrap();
    for i in 0..100 {
        writeln!(
            f,
            "2023-05-28T13:01:{:02}.{:03},VER,11000,250,7,100,0,12,5",
            i / 4,
            i % 4 * 250
        )
        .unwrap();
    }
    writeln!(f, "2023-05-28T13:01:30.000,VER,11000,fast,7,100,0,12,5").unwrap();
    writeln!(f, "2023-05-28T13:01:30.250,VER,11000,250,7,100,0").unwrap();
    writeln!(f, "2023-05-28T13:01:30.500,VER,11000,250,7,100,0,12,5").unwrap();
    drop(f);
    let out_dir = dir.path().join("out");
    let out = pitwall(&[
        "run",
        "-q",
        "--input",
        path.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["records"], 101);
    assert_eq!(summary["dead_letters"], 2);
    assert_eq!(summary["rows"], 103);
    assert_eq!(summary["dead_letters_by_reason"]["Speed: not a number"], 1);
    assert_eq!(
        summary["dead_letters_by_reason"]["row: wrong number of fields"],
        1
    );
    let dead = std::fs::read_to_string(out_dir.join("dead_letters.jsonl")).unwrap();
    let first: serde_json::Value = serde_json::from_str(dead.lines().next().unwrap()).unwrap();
    assert_eq!(first["position"], 102);
    assert_eq!(first["field"], "Speed");
    assert!(first["raw"].as_str().unwrap().contains("fast"));
    // DRS open for the whole stint: one episode, raised once, closed at the end of input.
    let alerts = std::fs::read_to_string(out_dir.join("alerts.jsonl")).unwrap();
    assert_eq!(
        alerts
            .lines()
            .filter(|l| l.contains("\"drs_activated\""))
            .count(),
        1
    );
}
