#!/usr/bin/env python3
"""pitwall's per-sample work as an Apache Flink SQL job on Kafka: the side-by-side peer of
`pitwall bench kafka` (issue 20). PyFlink only submits the job; every record stays in the JVM.

It reads the telemetry topic as pitwall does (JSON values, key driver_id) through Flink's Kafka
SQL connector, computes per driver, in arrival order, the same conditions as the peers in
../shared/peers (wheel spin from the gear ratios, lugging, over-rev, invalid gear, DRS opened
and closed, high speed), their episode starts (a condition false -> true), and the rolling
mean of speed and rpm over the last 1000 samples; every per-sample row goes to a blackhole
sink (the windows' work), and every sample that starts an episode goes to the alerts topic as
one JSON message: the driver, the sample's session time, which alerts it starts, and the
sample's own Kafka timestamp (`sample_ms`), so that a reader can time sample -> alert on the
topic from the alert message's timestamp (Kafka's CreateTime, set when Flink sends it).

    python kafka_alerts.py --brokers 127.0.0.1:9092 --topic T --alerts-topic A --mode drain
    python kafka_alerts.py ... --mode live --seconds 60

drain: reads the topic from its start to the offsets it had when the job began (a bounded
source) and ends; prints one JSON line (records, seconds_job, records_per_second, ...).
live: reads from the latest offsets on, for --seconds, then is cancelled; prints a JSON line.

Delivery to the alerts topic is Flink's `at-least-once` with no checkpointing: messages are
sent as they come (linger.ms 0), like pitwall with `[kafka.transactions] enabled = false`.
Exactly once in Flink needs checkpoints, and its alerts would then be visible to a
read_committed consumer at each checkpoint: the latency would be the checkpoint interval.
"""

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

RATIOS = {1: 13.0, 2: 10.5, 3: 8.5, 4: 7.0, 5: 6.0, 6: 5.2, 7: 4.5, 8: 4.0}
WHEEL_RADIUS_M = 0.33
K_KMH = 2 * math.pi * WHEEL_RADIUS_M / 60 * 3.6
SPIN_SLIP = 1.15
WINDOW = 1000
JVM_ARGS = "-XX:+UseParallelGC -Xms1g -Xmx1g"
ALERTS = ("wheel_spin", "lugging", "over_rev", "invalid_gear", "drs_open", "drs_close",
          "high_speed")


def dbl(x):
    """A DOUBLE literal that round-trips to the same f64."""
    r = repr(float(x))
    return r + ("E0" if "e" not in r and "E" not in r else "")


def statements(args):
    ratio_case = " ".join(f"WHEN {g} THEN {dbl(r)}" for g, r in RATIOS.items())
    bounded = "'scan.bounded.mode' = 'latest-offset'," if args.mode == "drain" else ""
    startup = "earliest-offset" if args.mode == "drain" else "latest-offset"
    source = f"""
CREATE TABLE telemetry (
  driver_id STRING,
  session_time DOUBLE,
  lap_number INT,
  rpm DOUBLE,
  speed DOUBLE,
  gear INT,
  drs INT,
  sample_ts TIMESTAMP_LTZ(3) METADATA FROM 'timestamp' VIRTUAL,
  pt AS PROCTIME()
) WITH (
  'connector' = 'kafka',
  'topic' = '{args.topic}',
  'properties.bootstrap.servers' = '{args.brokers}',
  'properties.group.id' = '{args.group}',
  'scan.startup.mode' = '{startup}',
  {bounded}
  'format' = 'json',
  'json.ignore-parse-errors' = 'true'
)"""
    conds = f"""
CREATE TEMPORARY VIEW conds AS
SELECT driver_id, session_time, lap_number, rpm, speed, sample_ts, pt,
  COALESCE(speed > 0
           AND rpm / (CASE gear {ratio_case} END) * {dbl(K_KMH)} > speed * {dbl(SPIN_SLIP)},
           FALSE) AS spin,
  gear > 3 AND rpm < 8000 AS lug,
  gear < 5 AND rpm > 13000 AS over_rev,
  gear < 0 OR gear > 8 AS inv,
  drs IN (10, 12, 14) AS drs_on,
  speed > 300 AS high
FROM telemetry
WHERE driver_id IS NOT NULL"""
    trans = """
CREATE TEMPORARY VIEW trans AS
SELECT driver_id, session_time, lap_number, rpm, speed, sample_ts, pt,
  spin AND NOT LAG(spin, 1, FALSE) OVER w AS wheel_spin,
  lug AND NOT LAG(lug, 1, FALSE) OVER w AS lugging,
  over_rev AND NOT LAG(over_rev, 1, FALSE) OVER w AS over_rev,
  inv AND NOT LAG(inv, 1, FALSE) OVER w AS invalid_gear,
  drs_on AND NOT LAG(drs_on, 1, FALSE) OVER w AS drs_open,
  LAG(drs_on, 1, FALSE) OVER w AND NOT drs_on AS drs_close,
  high AND NOT LAG(high, 1, FALSE) OVER w AS high_speed
FROM conds
WINDOW w AS (PARTITION BY driver_id ORDER BY pt)"""
    flags = ", ".join(ALERTS)
    outp = f"""
CREATE TEMPORARY VIEW outp AS
SELECT driver_id, session_time, lap_number, sample_ts,
  AVG(speed) OVER w AS mean_speed,
  AVG(rpm) OVER w AS mean_rpm,
  {flags}
FROM trans
WINDOW w AS (PARTITION BY driver_id ORDER BY pt
             ROWS BETWEEN {WINDOW - 1} PRECEDING AND CURRENT ROW)"""
    flag_cols = ", ".join(f"{a} BOOLEAN" for a in ALERTS)
    windows = f"""
CREATE TEMPORARY TABLE windows (
  driver_id STRING, session_time DOUBLE, lap_number INT, sample_ts TIMESTAMP_LTZ(3),
  mean_speed DOUBLE, mean_rpm DOUBLE, {flag_cols}
) WITH ('connector' = 'blackhole')"""
    alerts = f"""
CREATE TEMPORARY TABLE alerts (
  driver_id STRING, session_time DOUBLE, lap_number INT, sample_ms BIGINT, {flag_cols}
) WITH (
  'connector' = 'kafka',
  'topic' = '{args.alerts_topic}',
  'properties.bootstrap.servers' = '{args.brokers}',
  'properties.linger.ms' = '0',
  'sink.delivery-guarantee' = 'at-least-once',
  'key.format' = 'raw',
  'key.fields' = 'driver_id',
  'value.format' = 'json'
)"""
    any_flag = " OR ".join(ALERTS)
    insert_windows = "INSERT INTO windows SELECT * FROM outp"
    insert_alerts = f"""
INSERT INTO alerts
SELECT driver_id, session_time, lap_number, {sample_ms_expr()} AS sample_ms, {flags}
FROM outp WHERE {any_flag}"""
    return [source, conds, trans, outp, windows, alerts], [insert_windows, insert_alerts]


def sample_ms_expr():
    # Epoch milliseconds of a TIMESTAMP_LTZ(3): Flink has no direct function; UNIX_TIMESTAMP
    # gives seconds, so the milliseconds come from the difference to the whole second.
    return ("CAST(TIMESTAMPDIFF(SECOND, TO_TIMESTAMP_LTZ(0, 0), sample_ts) AS BIGINT) * 1000"
            " + EXTRACT(MILLISECOND FROM sample_ts)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--brokers", default="127.0.0.1:9092")
    ap.add_argument("--topic", default="f1-telemetry")
    ap.add_argument("--alerts-topic", default="flink-alerts")
    ap.add_argument("--group", default=f"flink-{os.getpid()}")
    ap.add_argument("-w", "--parallelism", type=int, default=1)
    ap.add_argument("--mode", choices=["drain", "live"], default="drain")
    ap.add_argument("--seconds", type=float, default=60.0, help="live: how long to run")
    ap.add_argument("--connector", required=True, help="flink-sql-connector-kafka jar")
    ap.add_argument("--explain", action="store_true")
    args = ap.parse_args()

    os.environ.setdefault("JVM_ARGS", JVM_ARGS)
    from pyflink.common import Configuration
    from pyflink.table import EnvironmentSettings, TableEnvironment

    conf = Configuration()
    conf.set_string("parallelism.default", str(args.parallelism))
    conf.set_string("pipeline.object-reuse", "true")
    conf.set_string("pipeline.jars", Path(args.connector).resolve().as_uri())
    conf.set_string("env.java.opts.all", JVM_ARGS)
    settings = EnvironmentSettings.new_instance().in_streaming_mode().with_configuration(
        conf).build()
    t_env = TableEnvironment.create(settings)
    ddl, inserts = statements(args)
    for s in ddl:
        t_env.execute_sql(s)
    stmt = t_env.create_statement_set()
    for s in inserts:
        stmt.add_insert_sql(s)
    if args.explain:
        print(stmt.explain())
        return
    started = time.perf_counter()
    result = stmt.execute()
    client = result.get_job_client()
    if args.mode == "drain":
        client.get_job_execution_result().result()
    else:
        time.sleep(args.seconds)
        client.cancel().result()
    seconds = time.perf_counter() - started
    print(json.dumps({"mode": args.mode, "parallelism": args.parallelism,
                      "seconds_job": round(seconds, 3), "job_id": str(client.get_job_id())}))


if __name__ == "__main__":
    sys.exit(main())
