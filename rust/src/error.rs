//! Errors of the engine: what kind of problem, and a message naming the layer.

use std::fmt;

/// The kind of an engine error; the Python glue maps each to its exception class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Wrong shape, rank or size; layers that do not chain.
    Shape,
    /// A parameter outside its range.
    Config,
}

/// An engine error with a human-readable message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
}

impl Error {
    pub fn shape(message: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::Shape,
            message: message.into(),
        }
    }

    pub fn config(message: impl Into<String>) -> Self {
        Error {
            kind: ErrorKind::Config,
            message: message.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;
