//! Kafka: configuration, topic admin, the replay producer, the engine's source and sinks, and
//! the console consumer. Only standard Kafka APIs are used, so Apache Kafka, Redpanda or MSK
//! work as the local Tansu broker does.

pub mod admin;
pub mod produce;
pub mod sink;
pub mod source;
pub mod tail;

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::ClientConfig;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Topics {
    /// Keyed by driver id, so one driver's samples stay on one partition, in order.
    pub telemetry: TopicSpec,
    /// Partition by severity: high 0, medium 1, low 2; keyed by alert id.
    pub alerts: TopicSpec,
    pub predictions: TopicSpec,
    /// Window aggregates, keyed by driver.
    pub windows: TopicSpec,
    /// Messages the engine could not use: the original bytes, with the reason in headers.
    pub dead_letters: TopicSpec,
}

impl Topics {
    pub fn all(&self) -> [&TopicSpec; 5] {
        [
            &self.telemetry,
            &self.alerts,
            &self.predictions,
            &self.windows,
            &self.dead_letters,
        ]
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProducerSettings {
    pub acks: String,
    pub compression: String,
    pub linger_ms: u32,
    pub batch_size: u32,
    pub retries: u32,
    /// How long a message may wait for delivery; 0 = for ever (the engine's sinks: nothing is
    /// given up while a broker is away).
    pub message_timeout_ms: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConsumerSettings {
    pub session_timeout_ms: u32,
    /// Messages a worker takes from its consumer per activation.
    pub poll_batch: usize,
    pub fetch_wait_max_ms: u32,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    /// Overridden by `--brokers` or `PITWALL_BROKERS`.
    pub brokers: String,
    /// The engine's consumer group: its committed offsets are where a restart resumes.
    pub group_id: String,
    pub replication_factor: i32,
    /// After a restart, re-read each partition from its start to rebuild the detectors'
    /// state exactly, emitting nothing for what was committed before.
    pub rebuild_state: bool,
    pub topics: Topics,
    /// `pitwall produce`, the replay producer.
    pub producer: ProducerSettings,
    /// The engine's sinks (alerts, windows, dead letters).
    pub sink: ProducerSettings,
    pub consumer: ConsumerSettings,
}

impl Default for KafkaConfig {
    /// `[kafka]` of the embedded `config/pitwall.toml`.
    fn default() -> Self {
        crate::config::PitwallConfig::default().kafka
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
