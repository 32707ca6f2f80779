#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpus into fuzz/corpus/<target>/ from the real race in
../shared/data (a few hundred lines, never committed: the data is not ours to copy) and from
the inputs the tests use. Run by .ci/run before the short fuzz runs, and by hand before long
ones; it only adds files, so a corpus a fuzzer grew is kept.

    python3 fuzz/seed_corpus.py [--data ../shared/data/monaco-2023]
"""

import argparse
import csv
import gzip
import hashlib
import io
import json
from pathlib import Path

FUZZ = Path(__file__).resolve().parent
ROOT = FUZZ.parent

# What the tests feed the parsers by hand (src/**/tests, tests/*.rs).
TEST_CSV = (
    "Date,Driver,RPM,Speed,nGear,Throttle,Brake,DRS,LapNumber,Weather\n"
    "2023-05-28T13:01:02.424,VER,10179,232,6,0,1,1,,sunny\n"
    "2023-05-28T13:01:02.664,VER,abc,232,6,0,1,1,,sunny\n"
    "2023-05-28T13:01:02.904,VER,10179,-5,6,0,1,1,,sunny\n"
    "2023-05-28T13:01:03.144,VER,10179,232,6,0,1\n"
    "not a date,VER,10179,232,6,0,1,1,,sunny\n"
    "2023-05-28T13:01:03.384,,10179,232,6,0,1,1,,sunny\n"
    "2023-05-28T13:01:03.624,VER,99999,232,6,0,1,1,,sunny\n"
    "2023-05-28T13:01:03.864,VER,10179,232,-1,0,1,1,,sunny\n"
    "2023-05-28T13:01:04.104,VER,10179,232,6,0,maybe,1,,sunny\n"
    "2023-05-28T13:01:04.344,VER,10179,232,128,104,0,12,3,sunny\n"
    "\n"
    "2023-05-28T13:01:04.584,VER,10179,232,7,50,0,12,3.0,sunny\n"
)
TEST_TIMES = [
    "2023-05-28T13:01:02.424", "2023-05-28 13:01:02.424020", "2023-05-28 13:01:02.999999Z",
    "2023-05-28T13:01:02+00:00", "1970-01-01T00:00:00.5", "2024-02-29T00:00:00",
    "2023-13-28T13:01:02", "2023-05-28T13:01:02.", "2023-05-28T13:01:02+02:00",
    "0 days 00:00:01.957000", "0 days 01:03:27.435000", "1 days 00:00:00", "12.5",
    "1685278862424", "2023-05-28T13:01:02.424Z",
]
TEST_QUERIES = [
    b"\x03driver=VER&metric=rpm&from=0&to=9223372036854775807&maxDataPoints=10",
    b"\x03driver=VER&metric=speed&from=20&to=10",
    b"\x03driver=VER&metric=speed&from=yesterday",
    b"\x03driver=HAM&metric=speed&from=1685278862000&to=1685278870000&maxDataPoints=50",
    b"\x03driver=bad%20id&metric=speed",
    b"\x03driver=V%45R&metric=speed+x&empty=",
    b"\x04severity=high&driver=VER,HAM&type=lugging",
    b"\x04severity=catastrophic",
    b"\x05driver=HAM&max=10",
    b"\x09driver=VER&latest=maybe&model_type=pit_stop_probability",
    b"\x07driver=VER",
    b"\x00",
]
TEST_BODIES = [
    b'\x01{"targets": [{"target": "rpm:HAM"}], "maxDataPoints": 4}',
    b'\x01{"targets": [{"target": "speed"}]}',
    b'\x01{"range": {"from": "2023-05-28T13:01:00Z", "to": "2023-05-28T13:03:00Z"},'
    b' "targets": [{"target": "speed:VER"}, {"target": "alerts", "type": "table"}]}',
    b'\x02{"range": {"from": "1970-01-01T00:00:00Z", "to": "2030-01-02T00:00:00Z"}}',
    b'\x00{"target": ""}',
]


def write(target: str, data: bytes) -> None:
    folder = FUZZ / "corpus" / target
    folder.mkdir(parents=True, exist_ok=True)
    (folder / hashlib.sha1(data).hexdigest()).write_bytes(data)


def lines_of(path: Path, count: int) -> list[str]:
    with gzip.open(path, "rt", newline="") as f:
        return [line for _, line in zip(range(count), f)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(ROOT.parent / "shared/data/monaco-2023"))
    data = Path(parser.parse_args().data)

    merged = lines_of(data / "monaco_2023_race.csv.gz", 6000)
    car = lines_of(data / "fastf1-car-data/car_data_2023_driver_1.csv.gz", 400)

    # fastf1_csv: first byte = form (1: per-driver car_data, 2: --drivers filter).
    header, rows = merged[0], merged[1:]
    for start in range(0, 5800, 400):  # 15 cuts of 12 rows: pre-start and the first laps
        write("fastf1_csv", b"\x00" + (header + "".join(rows[start:start + 12])).encode())
    write("fastf1_csv", b"\x02" + (header + "".join(rows[4000:4040])).encode())
    for start in range(1, 361, 60):
        write("fastf1_csv", b"\x01" + (car[0] + "".join(car[start:start + 10])).encode())
    write("fastf1_csv", b"\x00" + TEST_CSV.encode())

    # telemetry_json: the real rows as `pitwall produce` writes them, and the tests' messages.
    for row in csv.DictReader(io.StringIO(header + "".join(rows[3000:3040]))):
        msg = {
            "timestamp": row["Date"] + "Z",
            "driver_id": row["Driver"],
            "speed": float(row["Speed"]),
            "rpm": float(row["RPM"]),
            "gear": int(row["nGear"]),
            "throttle": float(row["Throttle"]),
            "brake": row["Brake"] in ("1", "True"),
            "drs": int(row["DRS"]),
            "session_time": float(row["SessionTime"]),
            "lap_number": int(float(row["LapNumber"])) if row["LapNumber"] else None,
            "message_type": "telemetry",
        }
        write("telemetry_json", json.dumps(msg).encode())
    write("telemetry_json", b'{"timestamp": 1685278862424, "driver_id": "HAM", "speed": 100,'
                            b' "rpm": 9000, "gear": 3, "throttle": 50, "brake": 0, "drs": 1,'
                            b' "x": 1.5, "y": -2.0, "brake_temp": 300}')
    write("telemetry_json", b'{"timestamp": "yesterday", "driver_id": "HAM", "speed": 1}')

    # times: the real dates (both FastF1 forms), car_data's timedeltas, and the tests' times.
    for line in rows[:4000:200]:
        date = line.split(",", 1)[0]
        write("times", date.encode())
        write("times", date.replace("T", " ").encode() + b"020")
    for line in car[1:200:20]:
        write("times", line.split(",", 1)[0].encode())
    for t in TEST_TIMES:
        write("times", t.encode())

    # http_query (first byte = route) and simple_json (first byte = POST route).
    for q in TEST_QUERIES:
        write("http_query", q)
    for b in TEST_BODIES:
        write("simple_json", b)

    # config: the shipped file, and each of its sections alone.
    shipped = (ROOT / "config/pitwall.toml").read_text()
    write("config", shipped.encode())
    for section in shipped.split("\n["):
        write("config", ("[" + section).encode())


if __name__ == "__main__":
    main()
