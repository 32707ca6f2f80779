#!/usr/bin/env python3
"""Reads an alerts topic the Flink job wrote (confluent-kafka) and prints one JSON line: how
many alerts of each kind, the span of their Kafka timestamps (first to last: the job's
processing time without its start), and sample -> alert on the topic (the alert message's
timestamp minus the sample's, `sample_ms`) p50 / p99 in ms."""

import argparse
import json
import time

from confluent_kafka import Consumer, TopicPartition

ALERTS = ("wheel_spin", "lugging", "over_rev", "invalid_gear", "drs_open", "drs_close",
          "high_speed")


def percentile(sorted_values, q):
    if not sorted_values:
        return None
    return sorted_values[round((len(sorted_values) - 1) * q)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--brokers", default="127.0.0.1:9092")
    ap.add_argument("--topic", required=True)
    ap.add_argument("--idle", type=float, default=5.0, help="stop after this long with nothing")
    args = ap.parse_args()
    c = Consumer({"bootstrap.servers": args.brokers, "group.id": f"read-{time.time_ns()}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    meta = c.list_topics(args.topic, timeout=10).topics[args.topic]
    c.assign([TopicPartition(args.topic, p, 0) for p in meta.partitions])
    counts = {a: 0 for a in ALERTS}
    latencies, stamps = [], []
    messages = 0
    last = time.monotonic()
    while time.monotonic() - last < args.idle:
        for m in c.consume(10000, timeout=0.5):
            if m.error():
                continue
            last = time.monotonic()
            messages += 1
            v = json.loads(m.value())
            for a in ALERTS:
                counts[a] += bool(v.get(a))
            _, ts = m.timestamp()
            stamps.append(ts)
            latencies.append(ts - v["sample_ms"])
    c.close()
    latencies.sort()
    print(json.dumps({
        "messages": messages,
        "alerts": counts,
        "first_to_last_s": (max(stamps) - min(stamps)) / 1000 if stamps else None,
        "p50_ms": percentile(latencies, 0.5),
        "p99_ms": percentile(latencies, 0.99),
    }))


if __name__ == "__main__":
    main()
