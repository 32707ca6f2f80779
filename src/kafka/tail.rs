//! `pitwall tail`: a console consumer in a named group, one JSON line per message.

use super::{client_error, BrokerError, KafkaConfig};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use serde_json::{json, Value};
use std::io::Write;
use std::time::{Duration, Instant};

pub struct TailOptions {
    pub topic: String,
    pub group: String,
    pub from_beginning: bool,
    pub max: Option<u64>,
    /// Stop after this long without a message.
    pub timeout: Duration,
}

fn as_json(bytes: Option<&[u8]>) -> Value {
    match bytes {
        None => Value::Null,
        Some(b) => serde_json::from_slice(b)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(b).into_owned())),
    }
}

/// Prints messages to `out`; returns how many.
pub fn tail(
    cfg: &KafkaConfig,
    opts: &TailOptions,
    out: &mut impl Write,
) -> Result<u64, BrokerError> {
    let mut c = cfg.base();
    c.set("group.id", &opts.group)
        .set("enable.auto.commit", "true")
        // The engine's outputs as committed by its transactions, never an aborted one.
        .set("isolation.level", "read_committed")
        .set(
            "auto.offset.reset",
            if opts.from_beginning {
                "earliest"
            } else {
                "latest"
            },
        )
        .set(
            "session.timeout.ms",
            cfg.consumer.session_timeout_ms.to_string(),
        );
    // The `[kafka.properties]` and `-X` last: they win over the flags' settings.
    let consumer: BaseConsumer = cfg
        .with_properties(c)
        .create()
        .map_err(client_error(format!("kafka consumer for {}", cfg.brokers)))?;
    consumer
        .subscribe(&[&opts.topic])
        .map_err(client_error(format!("subscribing to {}", opts.topic)))?;
    let mut count = 0;
    let mut last = Instant::now();
    while opts.max.is_none_or(|m| count < m) && last.elapsed() < opts.timeout {
        match consumer.poll(Duration::from_millis(100)) {
            None => {}
            Some(Err(e)) => tracing::warn!("tail {}: {e}", opts.topic),
            Some(Ok(m)) => {
                last = Instant::now();
                count += 1;
                let headers: serde_json::Map<String, Value> = m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| {
                                (
                                    h.key.to_string(),
                                    Value::String(
                                        String::from_utf8_lossy(h.value.unwrap_or_default())
                                            .into_owned(),
                                    ),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let line = json!({
                    "topic": m.topic(),
                    "partition": m.partition(),
                    "offset": m.offset(),
                    "key": m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                    "headers": headers,
                    "value": as_json(m.payload()),
                });
                writeln!(out, "{line}")?;
            }
        }
    }
    out.flush()?;
    Ok(count)
}
