//! `pitwall topics create|list`.

use super::{client_error, BrokerError, KafkaConfig};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::types::RDKafkaErrorCode;
use std::time::Duration;

/// Creates every configured topic; a topic that exists already is fine.
pub async fn create_topics(cfg: &KafkaConfig) -> Result<Vec<String>, BrokerError> {
    let admin: AdminClient<DefaultClientContext> = cfg.client().create().map_err(client_error(
        format!("kafka admin client for {}", cfg.brokers),
    ))?;
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
        .map_err(client_error(format!("creating topics on {}", cfg.brokers)))?;
    let mut lines = Vec::new();
    for (spec, result) in cfg.topics.all().iter().zip(results) {
        match result {
            Ok(name) => lines.push(format!("created {name} ({} partitions)", spec.partitions)),
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                lines.push(format!("{name} exists already"))
            }
            Err((name, code)) => return Err(BrokerError::CreateTopic { topic: name, code }),
        }
    }
    Ok(lines)
}

/// Topic names and partition counts the cluster reports.
pub fn list_topics(cfg: &KafkaConfig) -> Result<Vec<(String, usize)>, BrokerError> {
    let consumer: BaseConsumer = cfg
        .client()
        .create()
        .map_err(client_error(format!("kafka client for {}", cfg.brokers)))?;
    let md = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .map_err(client_error(format!("metadata from {}", cfg.brokers)))?;
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
pub fn partition_count<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    topic: &str,
    brokers: &str,
) -> Result<i32, BrokerError> {
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .map_err(client_error(format!("metadata for {topic} from {brokers}")))?;
    match md.topics().first() {
        Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
            Ok(t.partitions().len() as i32)
        }
        _ => Err(BrokerError::NoSuchTopic {
            topic: topic.to_string(),
            brokers: brokers.to_string(),
        }),
    }
}
