//! Integration tests of sailbulk-parse.

mod fixtures;
mod jsontestsuite;
mod paths;
mod properties;
mod tester;
