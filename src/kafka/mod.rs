//! Kafka: configuration, topic admin, the replay producer, the engine's source and sinks, and
//! the console consumer. Only standard Kafka APIs are used: the tests run on Apache Kafka 4
//! (`scripts/kafka.sh`), and Redpanda or MSK work the same.

pub mod acks;
pub mod admin;
pub mod changelog;
pub mod lag;
pub mod produce;
mod redo;
pub mod sink;
pub mod source;
pub mod tail;
pub mod timing;
pub mod transaction;

pub use crate::config::{ConsumerSettings, KafkaConfig, ProducerSettings, TopicSpec, Topics};

/// What went wrong with the broker or a Kafka client, saying what was being done and on what.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("{doing}: {source}")]
    Client {
        doing: String,
        #[source]
        source: rdkafka::error::KafkaError,
    },
    #[error("creating topic {topic}: {code}")]
    CreateTopic {
        topic: String,
        code: RDKafkaErrorCode,
    },
    #[error("topic {topic} does not exist on {brokers}: create it with `pitwall topics create`")]
    NoSuchTopic { topic: String, brokers: String },
    #[error("{count} messages were not delivered")]
    Undelivered { count: u64 },
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// `map_err` for a client call: `doing` says what it was doing, and on what.
pub(crate) fn client_error(
    doing: impl Into<String>,
) -> impl FnOnce(rdkafka::error::KafkaError) -> BrokerError {
    let doing = doing.into();
    move |source| BrokerError::Client { doing, source }
}
use pitwall_dataflows::config::Invalid;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;

impl Topics {
    pub fn all(&self) -> [&TopicSpec; 6] {
        [
            &self.telemetry,
            &self.alerts,
            &self.predictions,
            &self.laps,
            &self.windows,
            &self.dead_letters,
        ]
    }
}

impl KafkaConfig {
    pub fn validate(&self) -> Result<(), Invalid> {
        for t in self.topics.all() {
            if t.name.is_empty() || t.partitions < 1 {
                return Err(Invalid::new(
                    "kafka.topics:",
                    format!("{:?} needs a name and at least 1 partition", t.name),
                ));
            }
        }
        if self.topics.alerts.partitions < 3 {
            return Err(Invalid::new(
                "kafka.topics.alerts",
                "needs 3 partitions (high, medium, low)",
            ));
        }
        if self.replication_factor < 1 {
            return Err(Invalid::new(
                "kafka.replication_factor",
                "must be at least 1",
            ));
        }
        // librdkafka's range, and room for a fetch that waits its fetch_wait_max_ms.
        if !(1000..=300_000).contains(&self.request_timeout_ms)
            || self.request_timeout_ms < self.consumer.fetch_wait_max_ms + 1000
        {
            return Err(Invalid::new(
                "kafka.request_timeout_ms",
                "must be 1000 to 300000, and 1000 more than kafka.consumer.fetch_wait_max_ms",
            ));
        }
        if self.consumer.poll_batch == 0 {
            return Err(Invalid::new(
                "kafka.consumer.poll_batch",
                "must be at least 1",
            ));
        }
        if self.consumer.max_in_dataflow == 0 {
            return Err(Invalid::new(
                "kafka.consumer.max_in_dataflow",
                "must be at least 1",
            ));
        }
        for (name, p) in [
            ("producer", &self.producer),
            ("sink", &self.sink),
            ("alert_sink", &self.alert_sink),
        ] {
            if p.max_in_flight == 0 || p.idempotence && p.max_in_flight > 5 {
                return Err(Invalid::new(
                    format!("kafka.{name}.max_in_flight"),
                    "must be 1 or more (at most 5 with idempotence)",
                ));
            }
        }
        let t = &self.transactions;
        if t.enabled {
            if !self.sink.idempotence || self.sink.acks != "all" {
                return Err(Invalid::new(
                    "kafka.transactions.enabled",
                    "needs kafka.sink.idempotence = true and acks = \"all\" (its producer is transactional)",
                ));
            }
            if t.commit_interval_ms == 0 || t.timeout_ms < 1000 {
                return Err(Invalid::new(
                    "kafka.transactions",
                    "commit_interval_ms must be 1 or more and timeout_ms 1000 or more",
                ));
            }
        }
        self.check_properties()
    }

    /// The settings every client shares, then the `[kafka.properties]` (admin, metadata).
    pub fn client(&self) -> ClientConfig {
        self.with_properties(self.base())
    }

    /// Bootstrap servers, client id, how long a request may go unanswered, librdkafka's own
    /// warnings to our log.
    pub(crate) fn base(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("client.id", "pitwall")
            .set("socket.timeout.ms", self.request_timeout_ms.to_string())
            .set_log_level(RDKafkaLogLevel::Warning);
        c
    }

    /// `c` with the `[kafka.properties]` (and `-X`) set last, so that they win. With
    /// librdkafka's `debug` set, its debug lines reach the log (target `librdkafka`).
    pub fn with_properties(&self, mut c: ClientConfig) -> ClientConfig {
        for (key, value) in self.properties() {
            c.set(key, value);
        }
        if self.has_property("debug") {
            c.set_log_level(RDKafkaLogLevel::Debug);
        }
        c
    }

    /// The properties as librdkafka takes them: every value a string.
    pub fn properties(&self) -> impl Iterator<Item = (&str, String)> {
        self.properties.iter().map(|(k, v)| {
            let value = match v {
                toml::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.as_str(), value)
        })
    }

    /// Whether `key` is one of the `[kafka.properties]`.
    pub fn has_property(&self, key: &str) -> bool {
        self.properties.contains_key(key)
    }

    /// Each property checked by librdkafka itself (the name exists, the value is one it takes,
    /// the build has what it needs, e.g. TLS), without connecting to anything.
    fn check_properties(&self) -> Result<(), Invalid> {
        for (key, v) in &self.properties {
            if matches!(
                v,
                toml::Value::Table(_) | toml::Value::Array(_) | toml::Value::Datetime(_)
            ) {
                return Err(Invalid::new(
                    "kafka",
                    format!("property {key}: {v} is not a string, number or boolean"),
                ));
            }
        }
        for (key, value) in self.properties() {
            let mut c = ClientConfig::new();
            c.set(key, &value);
            if let Err(e) = c.create_native_config() {
                let reason = match e {
                    rdkafka::error::KafkaError::ClientConfig(_, desc, _, _) => desc,
                    other => other.to_string(),
                };
                return Err(Invalid::new(
                    "kafka",
                    format!("property {key}={value}: {reason}"),
                ));
            }
        }
        Ok(())
    }

    pub fn producer_config(&self, p: &ProducerSettings) -> ClientConfig {
        let mut c = self.base();
        c.set("acks", &p.acks)
            .set("compression.type", &p.compression)
            .set("linger.ms", p.linger_ms.to_string())
            .set("batch.size", p.batch_size.to_string())
            .set("message.send.max.retries", p.retries.to_string())
            .set("message.timeout.ms", p.message_timeout_ms.to_string())
            .set(
                "max.in.flight.requests.per.connection",
                p.max_in_flight.to_string(),
            )
            .set("enable.idempotence", p.idempotence.to_string())
            .set("queue.buffering.max.kbytes", p.queue_max_kbytes.to_string())
            .set(
                "queue.buffering.max.messages",
                p.queue_max_messages.to_string(),
            );
        self.with_properties(c)
    }

    /// The engine's one producer when outputs are transactional: the sink's settings, with
    /// the group's transactional id (a restart fences the producer it replaces) and messages
    /// given up no later than their transaction.
    pub fn transactional_producer_config(&self) -> ClientConfig {
        let t = &self.transactions;
        let mut c = self.producer_config(&self.sink);
        c.set("transactional.id", format!("{}-outputs", self.group_id))
            .set("transaction.timeout.ms", t.timeout_ms.to_string())
            .set("message.timeout.ms", t.timeout_ms.to_string());
        self.with_properties(c)
    }

    pub fn consumer_config(&self, group: &str) -> ClientConfig {
        let mut c = self.base();
        c.set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set(
                "session.timeout.ms",
                self.consumer.session_timeout_ms.to_string(),
            )
            .set(
                "fetch.wait.max.ms",
                self.consumer.fetch_wait_max_ms.to_string(),
            )
            .set("fetch.min.bytes", self.consumer.fetch_min_bytes.to_string())
            .set("fetch.max.bytes", self.consumer.fetch_max_bytes.to_string())
            // librdkafka wants fetch.max.bytes >= message.max.bytes (a consumer's requests
            // are small; this is no limit on the messages it reads).
            .set(
                "message.max.bytes",
                self.consumer.fetch_max_bytes.to_string(),
            )
            .set(
                "max.partition.fetch.bytes",
                self.consumer.max_partition_fetch_bytes.to_string(),
            )
            .set(
                "queued.max.messages.kbytes",
                self.consumer.queued_max_kbytes.to_string(),
            )
            .set(
                "queued.min.messages",
                self.consumer.queued_min_messages.to_string(),
            )
            .set(
                "fetch.queue.backoff.ms",
                self.consumer.fetch_queue_backoff_ms.to_string(),
            )
            .set("enable.partition.eof", "false")
            // Only what a transactional producer committed (the output topics); plain messages
            // are read as they come.
            .set("isolation.level", "read_committed");
        self.with_properties(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn producers_are_idempotent_so_retries_neither_repeat_nor_reorder() {
        let cfg = KafkaConfig::default();
        for settings in [&cfg.producer, &cfg.sink, &cfg.alert_sink] {
            let c = cfg.producer_config(settings);
            assert_eq!(c.get("max.in.flight.requests.per.connection"), Some("5"));
            assert_eq!(c.get("enable.idempotence"), Some("true"));
        }
    }

    /// The engine's clients are bounded (its memory) and librdkafka takes the combination
    /// (fetch.max.bytes may not be below message.max.bytes, say).
    #[test]
    fn the_engines_clients_are_bounded_and_librdkafka_takes_their_settings() {
        let cfg = KafkaConfig::default();
        let consumer = cfg.consumer_config("g");
        for key in [
            "fetch.max.bytes",
            "max.partition.fetch.bytes",
            "queued.max.messages.kbytes",
            "queued.min.messages",
            "fetch.queue.backoff.ms",
        ] {
            assert!(consumer.get(key).is_some(), "{key}");
        }
        assert!(consumer.create_native_config().is_ok());
        for settings in [&cfg.producer, &cfg.sink, &cfg.alert_sink] {
            let producer = cfg.producer_config(settings);
            assert!(producer.get("queue.buffering.max.kbytes").is_some());
            assert!(producer.create_native_config().is_ok());
        }
        // Alerts are sent at once; windows are batched.
        assert_eq!(cfg.alert_sink.linger_ms, 0);
        assert!(cfg.sink.linger_ms > 0);
    }

    #[test]
    fn properties_come_last_and_win_for_every_client() {
        let mut cfg = KafkaConfig::default();
        cfg.properties
            .insert("acks".into(), toml::Value::String("1".into()));
        cfg.properties
            .insert("fetch.wait.max.ms".into(), toml::Value::Integer(77));
        cfg.properties
            .insert("enable.idempotence".into(), toml::Value::Boolean(true));
        let producer = cfg.producer_config(&cfg.producer);
        assert_eq!(producer.get("acks"), Some("1"));
        assert_eq!(producer.get("enable.idempotence"), Some("true"));
        assert_eq!(
            cfg.consumer_config("g").get("fetch.wait.max.ms"),
            Some("77")
        );
        assert_eq!(cfg.client().get("acks"), Some("1"));
        assert!(cfg.validate().is_ok());
    }

    #[test]
    fn librdkafka_checks_each_property_and_the_error_names_it() {
        let mut cfg = KafkaConfig::default();
        cfg.properties
            .insert("no.such.thing".into(), toml::Value::String("1".into()));
        let err = cfg.validate().unwrap_err();
        assert!(err.to_string().contains("no.such.thing"), "{err}");
        let mut cfg = KafkaConfig::default();
        cfg.properties
            .insert("acks".into(), toml::Value::Array(vec![]));
        assert!(cfg.validate().unwrap_err().to_string().contains("acks"));
    }

    /// TLS and SASL/SCRAM are there exactly in the builds with the `ssl` feature.
    #[test]
    fn sasl_ssl_needs_the_ssl_feature() {
        let mut cfg = KafkaConfig::default();
        for (k, v) in [
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanisms", "SCRAM-SHA-512"),
            ("sasl.username", "alice"),
            ("sasl.password", "secret"),
        ] {
            cfg.properties
                .insert(k.into(), toml::Value::String(v.into()));
        }
        let checked = cfg.validate();
        if cfg!(feature = "ssl") {
            assert!(checked.is_ok(), "{checked:?}");
        } else {
            let err = checked.unwrap_err();
            assert!(
                err.to_string().contains("security.protocol=SASL_SSL"),
                "{err}"
            );
            assert!(err.to_string().contains("OpenSSL not available"), "{err}");
        }
    }
}
