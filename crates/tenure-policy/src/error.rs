//! Errors of bundle loading: every problem names the file and the field.

use std::fmt;

/// One problem in a bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub file: String,
    pub field: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(f, "{}: field {}: {}", self.file, self.field, self.message)
        }
    }
}

/// A bundle that cannot be used, with every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct BundleError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for BundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid policy bundle")?;
        for p in &self.problems {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

pub(crate) fn problem(file: &str, field: impl Into<String>, message: impl Into<String>) -> Problem {
    Problem { file: file.to_owned(), field: field.into(), message: message.into() }
}
