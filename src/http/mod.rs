//! The HTTP side of `pitwall run`: a query store the dataflow feeds ([`store`]), a route
//! table of small handlers over it ([`routes`]; [`infinity`] and [`simple_json`] are the two
//! API dialects, [`params`] and [`series`] what they share), the live page ([`page`]) and
//! the server ([`server`]).
//!
//! The store is built from the bottom up, each module importing only those before it:
//! [`sample`] (a sample and its point metrics, named once), [`pyramid`] (min/max summaries
//! per metric), [`columns`] and [`window_ring`] (a driver's rings), [`store`].
//!
//! A new endpoint is a handler function in the file of its dialect and one line in
//! [`routes::ROUTES`].

pub mod columns;
pub mod infinity;
pub mod page;
pub mod params;
pub mod pyramid;
pub mod response;
pub mod routes;
pub mod sample;
pub mod series;
pub mod server;
pub mod simple_json;
pub mod store;
#[cfg(test)]
mod test_store;
pub mod window_ring;

pub use server::serve;
