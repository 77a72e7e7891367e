//! The message corpus shared by the agreement tests and the reference's examples.
//!
//! - `examples.rs`: hand-written valid messages, every message type, option and family, with
//!   one timestamp ([`EXAMPLE_TIME`]) and one epoch ([`EXAMPLE_EPOCH`]) so every run renders the
//!   same reference.
//! - `strategies.rs` (feature `strategies`): proptest strategies built from the Rust types'
//!   own constructors, and the deterministic samples that complete the valid corpus
//!   ([`client_corpus`], [`server_corpus`]).
//! - `negative.rs`: the negative corpus, frames every artifact must reject.
//! - `typescript.rs` (feature `strategies`) and `typify.rs`: the files generated from them, the
//!   TypeScript check files and typify's schema copies.
//!
//! The corpus is data about the protocol crate, so it lives next to the generator: the reference
//! renders its examples from it, the TypeScript check files are generated from it (and guarded by
//! the drift check like every other generated file), and the tests in `codegen/tests/` validate
//! it against the Rust decoder, the JSON Schemas, the generated TypeScript and typify.
//!
//! proptest is needed only for the strategies, so it is an optional dependency behind the
//! `strategies` feature: the agreement tests enable it through a dev-dependency, and xtask
//! enables it because the TypeScript corpus holds deterministic samples. For the same reason
//! the TypeScript corpus is not in [`GENERATORS`](crate::GENERATORS) (whose output must not
//! depend on a feature) but registered by `xtask::codegen::all_files`.

mod examples;
mod negative;
#[cfg(feature = "strategies")]
pub mod strategies;
#[cfg(feature = "strategies")]
mod typescript;
mod typify;

pub use examples::{
    EXAMPLE_EPOCH, EXAMPLE_TIME, Example, client_examples, example_events, example_payloads,
    example_topic, ident, server_examples,
};
pub use negative::{Direction, NegativeCase, TsCheck, negative_cases};
#[cfg(feature = "strategies")]
pub use strategies::{SAMPLES_PER_DIRECTION, client_corpus, sample, server_corpus};
#[cfg(feature = "strategies")]
pub use typescript::typescript_corpus;
pub use typify::typify_input;
