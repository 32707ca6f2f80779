"""An independent consumer of pitwall's output topics (confluent-kafka, not the engine's own
client): reads each topic from the beginning with isolation.level=read_committed, applies the
changelog and prints the current rows as one JSON object.

    python3 tests/changelog_fold.py BROKERS ALERTS_TOPIC LAPS_TOPIC PREDICTIONS_TOPIC \
        [WINDOWS_TOPIC WINDOWS_JSONL]

The changelog, as the README states it: on the alerts and laps topics the latest value of a key
is the current row and a null value (a tombstone) deletes it; on the predictions topic (keyed by
model) a prediction is identified by model, driver and lap, and `retracted: true` deletes it.
Laps and pit stops share the laps topic (`DRIVER:LAP`, `DRIVER:LAP:pit`).

Printed: {"alerts": {alert_id: value}, "laps": {key: value}, "pit_stops": {key: value},
"predictions": {"model:driver:lap": value}, "tombstones": n, "withdrawn_predictions": n,
"repeated": n (messages whose key and value were already the latest of that key: a repeat),
"duplicates": {topic: n} (messages whose partition, key and value an earlier message of the
topic already had: the same message twice)}.

With a windows topic and an engine's windows.jsonl: "windows": {"messages": n, "missing": n,
"extra": n}, the topic's window messages against the file's lines as multisets.
"""

import json
import sys
import uuid
from collections import Counter

from confluent_kafka import Consumer, KafkaError, TopicPartition


def read_all(brokers, topic):
    """Every message of `topic`, partition by partition in offset order."""
    consumer = Consumer(
        {
            "bootstrap.servers": brokers,
            "group.id": f"fold-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
        }
    )
    metadata = consumer.list_topics(topic, timeout=30)
    if metadata.topics[topic].error is not None:
        raise SystemExit(f"{topic}: {metadata.topics[topic].error}")
    partitions = sorted(metadata.topics[topic].partitions)
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    at_end = set()
    messages = []
    idle = 0
    while len(at_end) < len(partitions):
        m = consumer.poll(1.0)
        if m is None:
            idle += 1
            if idle > 60:
                raise SystemExit(f"{topic}: no end of partitions {set(partitions) - at_end} in 60 s")
            continue
        idle = 0
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                at_end.add(m.partition())
                continue
            raise SystemExit(f"{topic}: {m.error()}")
        messages.append(m)
    consumer.close()
    messages.sort(key=lambda m: (m.partition(), m.offset()))
    return messages


def fold_keyed(messages, state, counts):
    for m in messages:
        key = m.key().decode()
        if m.value() is None:
            counts["tombstones"] += 1
            state.pop(key, None)
            continue
        value = json.loads(m.value())
        if state.get(key) == value:
            counts["repeated"] += 1
        state[key] = value


def duplicates(messages):
    """Messages whose partition, key and value an earlier one of the same topic had."""
    seen = Counter((m.partition(), m.key(), m.value()) for m in messages)
    return sum(n - 1 for n in seen.values())


def canonical(raw):
    return json.dumps(json.loads(raw), sort_keys=True)


def windows_against(brokers, topic, path):
    """The topic's windows against the engine's file, as multisets of canonical JSON."""
    on_topic = Counter(canonical(m.value()) for m in read_all(brokers, topic))
    with open(path, encoding="utf-8") as f:
        in_file = Counter(canonical(line) for line in f if line.strip())
    return {
        "messages": sum(on_topic.values()),
        "missing": sum((in_file - on_topic).values()),
        "extra": sum((on_topic - in_file).values()),
    }


def main():
    brokers, alerts_topic, laps_topic, predictions_topic = sys.argv[1:5]
    counts = {"tombstones": 0, "withdrawn_predictions": 0, "repeated": 0}
    repeats = {}

    alerts = {}
    messages = read_all(brokers, alerts_topic)
    repeats[alerts_topic] = duplicates(messages)
    fold_keyed(messages, alerts, counts)

    rows = {}
    messages = read_all(brokers, laps_topic)
    repeats[laps_topic] = duplicates(messages)
    fold_keyed(messages, rows, counts)
    laps = {k: v for k, v in rows.items() if not k.endswith(":pit")}
    pit_stops = {k: v for k, v in rows.items() if k.endswith(":pit")}

    predictions = {}
    messages = read_all(brokers, predictions_topic)
    repeats[predictions_topic] = duplicates(messages)
    for m in messages:
        value = json.loads(m.value())
        ident = f"{value['model_type']}:{value['driver_id']}:{value['lap']}"
        if value.get("retracted"):
            counts["withdrawn_predictions"] += 1
            predictions.pop(ident, None)
            continue
        if predictions.get(ident) == value:
            counts["repeated"] += 1
        predictions[ident] = value

    json.dump(
        {
            "alerts": alerts,
            "laps": laps,
            "pit_stops": pit_stops,
            "predictions": predictions,
            "duplicates": repeats,
            **counts,
            **(
                {"windows": windows_against(brokers, sys.argv[5], sys.argv[6])}
                if len(sys.argv) > 6
                else {}
            ),
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
