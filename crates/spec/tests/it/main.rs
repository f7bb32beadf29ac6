//! Integration tests of sailbulk-spec.

mod readme;
