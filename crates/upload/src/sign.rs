//! Request signatures and postback verification.

use md5::{Digest, Md5};
use serde_json::Value;

/// The `sig` of a request: MD5, in lower-case hex, of the secret followed by the sorted values
/// of every parameter but `sig` (`sailbulk_spec::api::signature_base`).
///
/// ```
/// // The first worked example of the API notes: api key `k`, secret `s`.
/// let sig = sailbulk_upload::sign("s", ["k", "json", r#"{"job": "update", "list": "x"}"#]);
/// assert_eq!(sig, "4da4c9975bf77b015f1bd28652080cb2");
/// ```
pub fn sign<'a>(secret: &str, values: impl IntoIterator<Item = &'a str>) -> String {
    let base = sailbulk_spec::api::signature_base(secret, values);
    hex(&Md5::digest(base.as_bytes()))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether two strings are equal, in time that does not depend on where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether a postback's signature holds: `fields` are the posted form fields as received
/// (`errors[0][line]=3` stays one field), including `api_key` and `sig`. The signature is checked
/// over every value but `sig`'s, and compared in constant time. (API notes: postbacks.)
///
/// ```
/// use sailbulk_upload::{sign, verify_postback};
/// let mut fields = vec![
///     ("job_id".to_string(), "6b02".to_string()),
///     ("status".into(), "completed".into()),
///     ("api_key".into(), "k".into()),
/// ];
/// let sig = sign("s", fields.iter().map(|(_, v)| v.as_str()));
/// fields.push(("sig".into(), sig));
/// assert!(verify_postback(&fields, "s"));
/// assert!(!verify_postback(&fields, "not-the-secret"));
/// ```
pub fn verify_postback<K: AsRef<str>, V: AsRef<str>>(fields: &[(K, V)], secret: &str) -> bool {
    let mut sig = None;
    let mut values = Vec::with_capacity(fields.len());
    for (k, v) in fields {
        if k.as_ref() == "sig" {
            sig = Some(v.as_ref());
        } else {
            values.push(v.as_ref());
        }
    }
    let Some(sig) = sig else {
        return false;
    };
    let expected = sign(secret, values);
    constant_time_eq(expected.as_bytes(), sig.trim().as_bytes())
}

/// As [`verify_postback`], for a postback a web framework has already parsed into nested values
/// (`{"errors": [{"line": 3}]}`): nested values are flattened to their leaves first, as the
/// platform does when it signs (`true`/`false` as `1`/`0`, nulls left out).
pub fn verify_postback_json(fields: &Value, secret: &str) -> bool {
    let Some(object) = fields.as_object() else {
        return false;
    };
    let Some(sig) = object.get("sig").and_then(Value::as_str) else {
        return false;
    };
    let mut leaves = Vec::new();
    for (k, v) in object {
        if k != "sig" {
            collect_leaves(v, &mut leaves);
        }
    }
    let expected = sign(secret, leaves.iter().map(String::as_str));
    constant_time_eq(expected.as_bytes(), sig.trim().as_bytes())
}

fn collect_leaves(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Null => {}
        Value::Bool(b) => out.push(if *b { "1" } else { "0" }.into()),
        Value::Number(n) => out.push(n.to_string()),
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| collect_leaves(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_leaves(v, out)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The three worked examples of the API notes, api key `k` and secret `s`.
    #[test]
    fn signs_the_worked_examples() {
        assert_eq!(
            sign("s", ["k", "json", r#"{"job": "update", "list": "x"}"#]),
            "4da4c9975bf77b015f1bd28652080cb2"
        );
        assert_eq!(
            sign("s", ["k", "json", r#"{"job":"update","list":"x"}"#]),
            "c3aebca25540ce42b599b17c61b13791"
        );
        // Flat form fields job=update, list=x: the values in any order give the same sig.
        assert_eq!(
            sign("s", ["x", "update", "json", "k"]),
            "5e21f66c7fd70adbaa49728364ff3e72"
        );
    }

    #[test]
    fn verifies_nested_postbacks() {
        let posted = json!({"job_id": "j", "errors": [{"line": 3, "code": "invalid_email"}], "ok": true, "gone": null, "api_key": "k"});
        let sig = sign("s", ["j", "3", "invalid_email", "1", "k"]);
        let mut with_sig = posted.clone();
        with_sig["sig"] = sig.clone().into();
        assert!(verify_postback_json(&with_sig, "s"));
        assert!(!verify_postback_json(&with_sig, "t"));
        assert!(!verify_postback_json(&posted, "s"), "no sig");
        let flat = [
            ("job_id", "j"),
            ("errors[0][line]", "3"),
            ("errors[0][code]", "invalid_email"),
            ("ok", "1"),
            ("api_key", "k"),
            ("sig", sig.as_str()),
        ];
        assert!(verify_postback(&flat, "s"));
        let mut tampered = flat;
        tampered[1].1 = "4";
        assert!(!verify_postback(&tampered, "s"));
        assert!(!verify_postback(&flat[..5], "s"), "no sig");
    }
}
