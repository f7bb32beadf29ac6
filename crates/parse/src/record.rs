//! A borrowed view of one valid update line, for the builder, the uploader and the simulator.

use crate::finding::{Finding, Severity};
use crate::Validator;
use sailbulk_spec::Optout;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// One line of an update file, checked against every rule and borrowed from the line.
///
/// Strings without escapes borrow from the line; `vars` and `fields` stay raw JSON text until
/// asked for. Where a key appears twice, the last one wins, as on the platform.
///
/// ```
/// use sailbulk_parse::UpdateRecord;
///
/// let line = br#"{"id":"12","key":"extid","vars":{"tier":"gold"},"lists":{"Main":1}}"#;
/// let record = UpdateRecord::parse(line).unwrap();
/// assert_eq!(record.identity(), ("extid", "12"));
/// assert_eq!(record.vars().unwrap()["tier"], "gold");
/// assert_eq!(record.lists["Main"], 1);
/// ```
#[derive(Debug, Clone, Default)]
pub struct UpdateRecord<'a> {
    /// `email`.
    pub email: Option<Cow<'a, str>>,
    /// `id`.
    pub id: Option<Cow<'a, str>>,
    /// `key` (the identity key `id` is in); `email` when absent.
    pub key: Option<Cow<'a, str>>,
    /// `keys`: further identifiers to attach.
    pub keys: BTreeMap<Cow<'a, str>, Cow<'a, str>>,
    /// `keysconflict`.
    pub keysconflict: Option<Cow<'a, str>>,
    /// `vars`, as raw JSON text.
    pub raw_vars: Option<&'a RawValue>,
    /// `lists`: list name to 1 (subscribe) or 0 (unsubscribe).
    pub lists: BTreeMap<Cow<'a, str>, u8>,
    /// `optout`.
    pub optout: Option<Optout>,
    /// `signup_date`, as raw JSON text (a string or a Unix timestamp).
    pub signup_date: Option<&'a RawValue>,
    /// `delete_vars`.
    pub delete_vars: Vec<Cow<'a, str>>,
    /// `fields`, as raw JSON text.
    pub fields: Option<&'a RawValue>,
}

/// Why a line cannot be viewed as an [`UpdateRecord`]: the errors the validator found in it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the line is not a valid update record: {}", .findings.first().map(|f| f.message.as_str()).unwrap_or("unknown problem"))]
pub struct InvalidRecord {
    /// The line's error findings (line number 1).
    pub findings: Vec<Finding>,
}

impl<'a> UpdateRecord<'a> {
    /// Checks `line` (without its `\n`) with every per-line rule and views it. Warnings do not
    /// stop a line; errors do.
    pub fn parse(line: &'a [u8]) -> Result<UpdateRecord<'a>, InvalidRecord> {
        let mut builder = crate::ValidatorBuilder::new();
        builder.format(Some(crate::Format::Json));
        Self::parse_with(&builder.build(), line)
    }

    /// As [`UpdateRecord::parse`], with a configured validator (for `strict`).
    pub fn parse_with(
        validator: &Validator,
        line: &'a [u8],
    ) -> Result<UpdateRecord<'a>, InvalidRecord> {
        let errors: Vec<Finding> = validator
            .check_line(line, 2)
            .into_iter()
            .filter(|f| f.severity == Severity::Error)
            .collect();
        if !errors.is_empty() {
            return Err(InvalidRecord { findings: errors });
        }
        let invalid = |message: String| InvalidRecord {
            findings: vec![Finding {
                line: 1,
                column: None,
                severity: Severity::Error,
                code: crate::Code::InvalidJson,
                field: None,
                message,
            }],
        };
        let text = std::str::from_utf8(line)
            .map_err(|e| invalid(e.to_string()))?
            .trim_end_matches('\r');
        // A map keeps the last of duplicate keys, as the platform does.
        let members: BTreeMap<Cow<'a, str>, &'a RawValue> =
            serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let mut record = UpdateRecord::default();
        for (name, value) in members {
            let json = value.get();
            let parsed: Result<(), serde_json::Error> = (|| {
                match &*name {
                    "email" => record.email = Some(cow_str(json)?),
                    "id" => record.id = Some(cow_str(json)?),
                    "key" => record.key = Some(cow_str(json)?),
                    "keys" => record.keys = serde_json::from_str(json)?,
                    "keysconflict" => record.keysconflict = Some(cow_str(json)?),
                    "vars" => record.raw_vars = Some(value),
                    "lists" => record.lists = serde_json::from_str(json)?,
                    "optout" => {
                        record.optout = Optout::parse(&cow_str(json)?);
                    }
                    "signup_date" => record.signup_date = Some(value),
                    "delete_vars" => record.delete_vars = serde_json::from_str(json)?,
                    "fields" => record.fields = Some(value),
                    _ => {}
                }
                Ok(())
            })();
            parsed.map_err(|e| invalid(format!("`{name}`: {e}")))?;
        }
        Ok(record)
    }

    /// The identity: `("email", address)` or `(key, id)`.
    pub fn identity(&self) -> (&str, &str) {
        match (&self.id, &self.email) {
            (Some(id), _) => (self.key.as_deref().unwrap_or("email"), id),
            (None, Some(email)) => ("email", email.trim()),
            (None, None) => ("email", ""),
        }
    }

    /// `vars` parsed into a JSON map (empty when absent).
    pub fn vars(&self) -> Result<serde_json::Map<String, serde_json::Value>, serde_json::Error> {
        match self.raw_vars {
            Some(raw) => serde_json::from_str(raw.get()),
            None => Ok(serde_json::Map::new()),
        }
    }
}

/// A JSON string, borrowed from the line when it has no escapes.
fn cow_str(json: &str) -> Result<Cow<'_, str>, serde_json::Error> {
    serde_json::from_str::<&str>(json)
        .map(Cow::Borrowed)
        .or_else(|_| serde_json::from_str::<String>(json).map(Cow::Owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_a_full_line() {
        let line = br#"{"email":"a@example.com","keys":{"extid":"7"},"vars":{"n":1,"o":{"p":[1]}},"lists":{"A":1,"B":0},"optout":"basic","signup_date":"Jan 18, 2013","delete_vars":["old"],"x":1}"#;
        let r = UpdateRecord::parse(line).unwrap();
        assert_eq!(r.identity(), ("email", "a@example.com"));
        assert_eq!(r.keys["extid"], "7");
        assert_eq!(r.vars().unwrap()["o"]["p"][0], 1);
        assert_eq!(r.lists.len(), 2);
        assert_eq!(r.optout, Some(Optout::Basic));
        assert_eq!(r.signup_date.unwrap().get(), "\"Jan 18, 2013\"");
        assert_eq!(r.delete_vars, vec!["old"]);
        assert!(matches!(r.email, Some(Cow::Borrowed(_))));
    }

    #[test]
    fn last_duplicate_wins() {
        let r =
            UpdateRecord::parse(br#"{"email":"a@example.com","email":"b@example.com"}"#).unwrap();
        assert_eq!(r.identity(), ("email", "b@example.com"));
    }

    #[test]
    fn refuses_invalid_lines() {
        let e = UpdateRecord::parse(br#"{"email":"nope"}"#).unwrap_err();
        assert_eq!(e.findings[0].code, crate::Code::InvalidEmail);
        assert!(UpdateRecord::parse(b"{").is_err());
        assert!(UpdateRecord::parse(br#"{"email":"a@example.com","lists":{"x":2}}"#).is_err());
    }
}
