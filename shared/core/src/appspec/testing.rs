//! Helpers for the platforms' test modules: read a text that must be accepted, or one that must
//! be refused with a given kind, line and message.

use std::fmt::Debug;

use super::{AppSpecError, AppSpecErrorKind};

/// A platform's parse function, with the file name its tests give it.
pub(super) struct Parser<T> {
    pub function: fn(&str, &str) -> Result<T, AppSpecError>,
    pub source_name: &'static str,
}

impl<T: Debug> Parser<T> {
    /// The AppSpec in `text`, which must be accepted.
    #[track_caller]
    pub fn parse(&self, text: &str) -> T {
        match (self.function)(text, self.source_name) {
            Ok(spec) => spec,
            Err(err) => panic!("{err}"),
        }
    }

    /// The error for `text`, which must be refused.
    #[track_caller]
    pub fn refuse(&self, text: &str) -> AppSpecError {
        match (self.function)(text, self.source_name) {
            Ok(spec) => panic!("accepted: {spec:?}"),
            Err(err) => err,
        }
    }

    /// Asserts the kind, line and message of the error for `text`.
    #[track_caller]
    pub fn assert_refused(&self, text: &str, kind: AppSpecErrorKind, line: usize, message: &str) {
        let err = self.refuse(text);
        assert_eq!(
            (err.kind, err.line, err.message.as_str()),
            (kind, Some(line), message),
            "{err}"
        );
    }
}
