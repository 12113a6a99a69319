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
pub fn from_dag_json(text: &str) -> Result<Ipld, DecodeError> {
    serde_ipld_dagjson::from_slice(text.as_bytes()).map_err(|e| DecodeError::Invalid(e.to_string()))
}

/// Decodes a `serde_json::Value` in DAG-JSON form into IPLD.
pub fn from_json_value(value: &serde_json::Value) -> Result<Ipld, DecodeError> {
    from_dag_json(&value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_and_bytes_use_the_slash_forms() {
        let cid = crate::cids::record_cid(b"x");
        let ipld = ipld_core::ipld!({ "l": cid, "b": Ipld::Bytes(vec![1, 2, 3]), "n": 5 });
        let text = to_dag_json(&ipld).unwrap();
        assert!(text.contains(&format!("{{\"/\":\"{cid}\"}}")), "{text}");
        assert!(text.contains("{\"/\":{\"bytes\":\"AQID\"}}"), "{text}");
        assert_eq!(from_dag_json(&text).unwrap(), ipld);
    }
}
