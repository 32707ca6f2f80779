//! Formats: the JSON shapes pitwall reads and writes, FastF1's timestamps, and what a usable
//! field value is. Shared by every source and sink; imports nothing of the binary above it.

pub mod messages;
pub mod race;
pub mod timefmt;
pub mod validate;
