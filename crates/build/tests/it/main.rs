//! Integration tests of sailbulk-build: round trips as properties.

mod roundtrip;
