//! Errors of the engine: what kind of problem, and a message naming the layer.

use std::fmt;

/// The kind of an engine error; the Python glue maps each to its exception class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Wrong shape, rank or size; layers that do not chain.
    Shape,
    /// A parameter outside its range.
    Config,
    /// A network or run would need more memory than allowed (checked before allocating).
    Memory {
        /// Bytes needed (`u64::MAX` when the figure itself overflows 64 bits).
        need: u64,
        /// The limit it was checked against.
        limit: u64,
    },
    /// The run was cancelled (its poll hook asked it to stop).
    Interrupted,
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

    /// `what` needs `need` bytes, more than `limit`.
    pub fn memory(what: &str, need: Option<u64>, limit: u64) -> Self {
        let need_text = match need {
            Some(n) => bytes_text(n),
            None => "more than 2^64 bytes".to_string(),
        };
        Error {
            kind: ErrorKind::Memory {
                need: need.unwrap_or(u64::MAX),
                limit,
            },
            message: format!(
                "{what} needs {need_text} of memory, more than the limit of {} \
                 (available memory, or $SNNFAST_MEMORY_LIMIT)",
                bytes_text(limit)
            ),
        }
    }

    /// The system refused an allocation of `need` bytes for `what` (a fallible allocation
    /// failed); the limit is reported as 0.
    pub fn allocation(what: &str, need: Option<u64>) -> Self {
        let need_text = need.map_or("more than 2^64 bytes".to_string(), bytes_text);
        Error {
            kind: ErrorKind::Memory {
                need: need.unwrap_or(u64::MAX),
                limit: 0,
            },
            message: format!("could not allocate {need_text} for {what}: the system refused"),
        }
    }

    pub fn interrupted() -> Self {
        Error {
            kind: ErrorKind::Interrupted,
            message: "the run was interrupted".to_string(),
        }
    }
}

/// `n` bytes as `"1.25 GB"` or `"3.4 MB"` (the wording of `snnfast._checks`).
fn bytes_text(n: u64) -> String {
    if n >= 100_000_000 {
        format!("{:.2} GB", n as f64 / 1e9)
    } else {
        format!("{:.1} MB", n as f64 / 1e6)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

pub type Result<T> = std::result::Result<T, Error>;

/// Checked byte arithmetic for memory estimates: `None` once a figure overflows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bytes(pub Option<u64>);

impl Bytes {
    pub const ZERO: Bytes = Bytes(Some(0));

    /// `count` values of `size` bytes each.
    pub fn of(count: usize, size: usize) -> Bytes {
        Bytes((count as u64).checked_mul(size as u64))
    }

    pub fn plus(self, other: Bytes) -> Bytes {
        Bytes(self.0.zip(other.0).and_then(|(a, b)| a.checked_add(b)))
    }

    pub fn times(self, n: usize) -> Bytes {
        Bytes(self.0.and_then(|a| a.checked_mul(n as u64)))
    }

    /// An error unless these bytes fit `limit`.
    pub fn check(self, limit: u64, what: &str) -> Result<()> {
        match self.0 {
            Some(n) if n <= limit => Ok(()),
            need => Err(Error::memory(what, need, limit)),
        }
    }
}

/// A zeroed vector of `n` values, allocated fallibly (a failed allocation is a `Memory` error,
/// not an abort).
pub fn zeroed<T: Clone + Default>(n: usize, what: &str) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(n)
        .map_err(|_| Error::allocation(what, Bytes::of(n, std::mem::size_of::<T>()).0))?;
    v.resize(n, T::default());
    Ok(v)
}
