//! The error type of the generator.

/// Why generation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// ts-rs could not render a type.
    #[error("cannot render TypeScript for {ty}: {source}")]
    TypeScript {
        /// The Rust type.
        ty: &'static str,
        /// What ts-rs said.
        #[source]
        source: ts_rs::ExportError,
    },
    /// A JSON value could not be serialized.
    #[error("cannot serialize {what}: {source}")]
    Json {
        /// What was being serialized.
        what: String,
        /// What serde said.
        #[source]
        source: serde_json::Error,
    },
    /// A schema did not have the shape the generator relies on.
    #[error("unexpected schema shape: {0}")]
    SchemaShape(String),
    /// A hand-written example of the corpus no longer fits the protocol types.
    #[error("{0}")]
    Example(String),
    /// A generator's output cannot become a generated file as given.
    #[error("{path}: {problem}")]
    File {
        /// The path of the file.
        path: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// Two generators produced the same path.
    #[error("two generators produce {0}")]
    DuplicatePath(String),
}

/// The result type of the generator.
pub type Result<T> = std::result::Result<T, Error>;
