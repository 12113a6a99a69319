//! DAG-JSON, for the API and the CLI.

use ipld_core::ipld::Ipld;

use crate::cbor::{DecodeError, EncodeError};

/// Encodes IPLD as compact DAG-JSON (links as `{"/": "bafy…"}`, bytes as `{"/": {"bytes": …}}`).
pub fn to_dag_json(ipld: &Ipld) -> Result<String, EncodeError> {
    let bytes = serde_ipld_dagjson::to_vec(ipld).map_err(|e| EncodeError(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| EncodeError(e.to_string()))
}

/// DAG-JSON as a `serde_json::Value`, for embedding in JSON responses or pretty printing.
pub fn to_json_value(ipld: &Ipld) -> Result<serde_json::Value, EncodeError> {
    let text = to_dag_json(ipld)?;
    serde_json::from_str(&text).map_err(|e| EncodeError(e.to_string()))
}

/// Decodes DAG-JSON into IPLD.
///
/// The key `/` is DAG-JSON's own: a map with it is a link (`{"/": "bafy…"}`, a CID exactly,
/// as [`crate::cids::parse`] reads it) or bytes (`{"/": {"bytes": "…"}}`), and nothing else.
/// `serde_ipld_dagjson` alone would take a link text with bytes to spare after the CID for the
/// CID, and would keep a `/` key among others, which its encoder then prints as invalid JSON.
pub fn from_dag_json(text: &str) -> Result<Ipld, DecodeError> {
    let ipld = serde_ipld_dagjson::from_slice(text.as_bytes())
        .map_err(|e| DecodeError::Invalid(e.to_string()))?;
    if text.contains('/') {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| DecodeError::Invalid(e.to_string()))?;
        slash_forms_are_exact(&value)?;
    }
    Ok(ipld)
}

/// Checks every map with a `/` key: a link with a strict CID, or bytes.
fn slash_forms_are_exact(value: &serde_json::Value) -> Result<(), DecodeError> {
    use serde_json::Value;
    match value {
        Value::Object(map) => match (map.len(), map.get("/")) {
            (_, None) => map.values().try_for_each(slash_forms_are_exact),
            (1, Some(Value::String(text))) => crate::cids::parse(text)
                .map(drop)
                .map_err(|e| DecodeError::Invalid(e.to_string())),
            (1, Some(Value::Object(bytes)))
                if bytes.len() == 1 && matches!(bytes.get("bytes"), Some(Value::String(_))) =>
            {
                Ok(())
            }
            _ => Err(DecodeError::Invalid(
                "the key \"/\" is for links {\"/\": \"bafy…\"} and bytes {\"/\": {\"bytes\": \"…\"}} only"
                    .into(),
            )),
        },
        Value::Array(items) => items.iter().try_for_each(slash_forms_are_exact),
        _ => Ok(()),
    }
}

/// Decodes a `serde_json::Value` in DAG-JSON form into IPLD.
pub fn from_json_value(value: &serde_json::Value) -> Result<Ipld, DecodeError> {
    from_dag_json(&value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The schema of a key log's `proof` (core.rs) allows exactly the strings that decode to
    /// 64 bytes: 85 base64 characters and a last one whose four spare bits are zero.
    #[test]
    fn a_signature_in_the_proof_pattern_decodes() {
        for last in ['A', 'Q', 'g', 'w'] {
            let text = format!("{{\"/\":{{\"bytes\":\"{}{last}\"}}}}", "0".repeat(85));
            let Ipld::Bytes(b) = from_dag_json(&text).unwrap() else {
                panic!("bytes");
            };
            assert_eq!(b.len(), 64);
        }
        let spare_bits = format!("{{\"/\":{{\"bytes\":\"{}\"}}}}", "0".repeat(86));
        assert!(from_dag_json(&spare_bits).is_err());
    }

    #[test]
    fn links_and_bytes_use_the_slash_forms() {
        let cid = crate::cids::record_cid(b"x");
        let ipld = ipld_core::ipld!({ "l": cid, "b": Ipld::Bytes(vec![1, 2, 3]), "n": 5 });
        let text = to_dag_json(&ipld).unwrap();
        assert!(text.contains(&format!("{{\"/\":\"{cid}\"}}")), "{text}");
        assert!(text.contains("{\"/\":{\"bytes\":\"AQID\"}}"), "{text}");
        assert_eq!(from_dag_json(&text).unwrap(), ipld);
        // A link with a byte to spare after its CID is not that CID.
        let mut long = cid.to_bytes();
        long.push(0);
        let spare = multibase::encode(multibase::Base::Base32Lower, &long);
        let e = from_dag_json(&format!("{{\"l\":{{\"/\":\"{spare}\"}}}}")).unwrap_err();
        assert!(e.to_string().contains("looks like a CID"), "{e}");
        // A `/` key among others is refused (it would print as invalid JSON).
        let e = from_dag_json(&format!("{{\"a\":1,\"/\":\"{cid}\"}}")).unwrap_err();
        assert!(e.to_string().contains("is for links"), "{e}");
        assert!(from_dag_json("{\"path\":\"a/b\"}").is_ok());
    }
}
