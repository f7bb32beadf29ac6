//! Postback verification, with the signature rule of `sailbulk-spec`.

use sailbulk_spec::api::same_signature;
pub use sailbulk_spec::api::sign;
use serde_json::Value;

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
    same_signature(&expected, sig.trim())
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
    same_signature(&expected, sig.trim())
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
