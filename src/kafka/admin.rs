//! `pitwall topics create|list`.

use super::KafkaConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;
use std::time::Duration;

/// Creates every configured topic; a topic that exists already is fine.
pub async fn create_topics(cfg: &KafkaConfig) -> Result<Vec<String>, String> {
    let admin: AdminClient<DefaultClientContext> = cfg
        .client()
        .create()
        .map_err(|e| format!("kafka admin client for {}: {e}", cfg.brokers))?;
    let topics: Vec<NewTopic> = cfg
        .topics
        .all()
        .iter()
        .map(|t| {
            NewTopic::new(
                &t.name,
                t.partitions,
                TopicReplication::Fixed(cfg.replication_factor),
            )
        })
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .create_topics(&topics, &opts)
        .await
        .map_err(|e| format!("creating topics on {}: {e}", cfg.brokers))?;
    let mut lines = Vec::new();
    for (spec, result) in cfg.topics.all().iter().zip(results) {
        match result {
            Ok(name) => lines.push(format!("created {name} ({} partitions)", spec.partitions)),
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                lines.push(format!("{name} exists already"))
            }
            Err((name, code)) => return Err(format!("creating topic {name}: {code}")),
        }
    }
    Ok(lines)
}

/// Topic names and partition counts the cluster reports.
pub fn list_topics(cfg: &KafkaConfig) -> Result<Vec<(String, usize)>, String> {
    let consumer: BaseConsumer = cfg
        .client()
        .create()
        .map_err(|e| format!("kafka client for {}: {e}", cfg.brokers))?;
    let md = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .map_err(|e| format!("metadata from {}: {e}", cfg.brokers))?;
    let mut topics: Vec<(String, usize)> = md
        .topics()
        .iter()
        .map(|t| (t.name().to_string(), t.partitions().len()))
        .collect();
    topics.sort();
    topics.dedup();
    Ok(topics)
}

/// Partition count of one topic, or an error a user can act on.
pub fn partition_count(consumer: &BaseConsumer, topic: &str, brokers: &str) -> Result<i32, String> {
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .map_err(|e| format!("metadata for {topic} from {brokers}: {e}"))?;
    match md.topics().first() {
        Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
            Ok(t.partitions().len() as i32)
        }
        _ => Err(format!(
            "topic {topic} does not exist on {brokers}: create it with `pitwall topics create`"
        )),
    }
}
