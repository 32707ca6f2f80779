//! Kafka: configuration, topic admin, the replay producer, the engine's source and sinks, and
//! the console consumer. Only standard Kafka APIs are used, so Apache Kafka, Redpanda or MSK
//! work as the local Tansu broker does.

pub mod acks;
pub mod admin;
pub mod produce;
pub mod sink;
pub mod source;
pub mod tail;

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
    pub fn validate(&self) -> Result<(), String> {
        for t in self.topics.all() {
            if t.name.is_empty() || t.partitions < 1 {
                return Err(format!(
                    "kafka.topics: {:?} needs a name and at least 1 partition",
                    t.name
                ));
            }
        }
        if self.topics.alerts.partitions < 3 {
            return Err("kafka.topics.alerts needs 3 partitions (high, medium, low)".into());
        }
        if self.replication_factor < 1 {
            return Err("kafka.replication_factor must be at least 1".into());
        }
        if self.consumer.poll_batch == 0 {
            return Err("kafka.consumer.poll_batch must be at least 1".into());
        }
        Ok(())
    }

    /// The settings every client shares. librdkafka's own warnings go to our log.
    pub fn client(&self) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.brokers)
            .set("client.id", "pitwall")
            .set_log_level(RDKafkaLogLevel::Warning);
        c
    }

    pub fn producer_config(&self, p: &ProducerSettings) -> ClientConfig {
        let mut c = self.client();
        c.set("acks", &p.acks)
            .set("compression.type", &p.compression)
            .set("linger.ms", p.linger_ms.to_string())
            .set("batch.size", p.batch_size.to_string())
            .set("message.send.max.retries", p.retries.to_string())
            .set("message.timeout.ms", p.message_timeout_ms.to_string())
            .set("enable.idempotence", "false");
        c
    }

    pub fn consumer_config(&self, group: &str) -> ClientConfig {
        let mut c = self.client();
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
            .set("enable.partition.eof", "false");
        c
    }
}
