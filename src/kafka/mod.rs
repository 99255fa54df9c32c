//! The Kafka shell: consume events in a consumer group, route them by vendor,
//! score, publish score updates and dead letters.
//!
//! Two stages run in one consumer (see [`processor`]):
//! 1. **route**: messages of `kafka.topics` are decoded and validated; a
//!    rejected message goes to the dead-letter topic; an accepted one is
//!    copied, unchanged, to the partitions of `kafka.repartition_topic` that
//!    own its vendors ([`ownership`]).
//! 2. **score**: each assigned partition of the repartition topic is a shard
//!    of the scoreboard. On assignment it is read from the beginning: up to
//!    the group's committed offset silently (catch-up, nothing published),
//!    then live (score updates published).
//!
//! Copies routed in one turn of the loop travel together, one record (a
//! [`bundle`]) per partition, so each crossing of the broker is paid per
//! turn, not per event.
//!
//! A live local shard gets a routed event at once (the local shortcut, see
//! [`processor`]); its copy still comes back through the broker and is
//! counted when read.
//!
//! Delivery guarantee (see [`runner`]): at least once into Kafka, exactly
//! once in the scores, because the engine ignores an event id it has seen.

mod bundle;
mod catch_up_log;
mod client;
mod copy_key;
mod deliveries;
pub mod ownership;
pub mod processor;
pub mod runner;
mod settings;

pub use client::{client_config, CONSUMER_DEFAULTS};
pub use settings::{is_secret, KafkaSettings};
