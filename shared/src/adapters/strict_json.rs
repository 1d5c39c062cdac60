//! JSON from clients, read strictly and explained when refused.
//!
//! serde_json keeps the last of two equal keys, so `{"content":"hi","content":"bye"}` would mean one thing to a
//! proxy, a log reader or another client's parser and another to us: such a body is refused, at any depth. A
//! refused body is answered with a reason that says what is wrong (a valid document nested too deep or holding a
//! lone UTF-16 surrogate is not "invalid JSON"), and with the top-level `requestId` whenever it was read before
//! the fault, so a WebSocket client can match the error to its request instead of waiting for its timeout.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// serde_json's own nesting limit (it refuses deeper documents before we see them).
const MAX_DEPTH: usize = 128;

/// Why a body was refused, and the `requestId` read before the fault, if any.
#[derive(Debug, PartialEq, Eq)]
pub struct Refused {
    pub request_id: Option<String>,
    pub reason: String,
}

/// The body as a JSON value, refusing duplicate keys.
pub fn parse(body: &[u8]) -> Result<Value, Refused> {
    let request_id = RefCell::new(None);
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let parsed = StrictValue { request_id: Some(&request_id) }
        .deserialize(&mut deserializer)
        .and_then(|value| deserializer.end().map(|()| value));
    parsed.map_err(|err| Refused { request_id: request_id.into_inner(), reason: reason(&err) })
}

fn reason(err: &serde_json::Error) -> String {
    let text = err.to_string();
    if let Some(key) = text.strip_prefix(DUPLICATE_KEY) {
        let key = key.split(" at line ").next().unwrap_or(key);
        format!("the key `{key}` appears twice in one object")
    } else if text.starts_with("recursion limit exceeded") {
        format!("objects and arrays may nest at most {MAX_DEPTH} levels deep")
    } else if text.contains("surrogate") || text.contains("hex escape") {
        "a \\u escape is not a character (a lone UTF-16 surrogate, \\uD800-\\uDFFF)".to_owned()
    } else if err.is_eof() {
        "the JSON ends too early".to_owned()
    } else {
        format!("not valid JSON ({})", text.split(" at line ").next().unwrap_or(&text))
    }
}

const DUPLICATE_KEY: &str = "duplicate key ";

/// A JSON value; at the top level (`request_id` set) it also records a string `requestId` as soon as it is read.
struct StrictValue<'a> {
    request_id: Option<&'a RefCell<Option<String>>>,
}

impl<'de> DeserializeSeed<'de> for StrictValue<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue<'_> {
    type Value = Value;

    fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
        formatter.write_str("a JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Value, E> {
        Number::from_f64(value).map(Value::Number).ok_or_else(|| E::custom("a number is out of range"))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut items: A) -> Result<Value, A::Error> {
        let mut values = Vec::new();
        while let Some(value) = items.next_element_seed(StrictValue { request_id: None })? {
            values.push(value);
        }
        Ok(Value::Array(values))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut entries: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = entries.next_key::<String>()? {
            if map.contains_key(&key) {
                return Err(A::Error::custom(format!("{DUPLICATE_KEY}{key}")));
            }
            let value = entries.next_value_seed(StrictValue { request_id: None })?;
            if let (Some(cell), "requestId", Value::String(id)) = (self.request_id, key.as_str(), &value) {
                cell.replace(Some(id.clone()));
            }
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn refused(body: &str) -> Refused {
        parse(body.as_bytes()).unwrap_err()
    }

    #[test]
    fn reads_what_serde_json_reads() {
        for body in [r#"{"a":[1,-2,3.5,true,null,"é\u00e9"],"b":{"c":{}}}"#, "[]", "\"x\"", "18446744073709551615"] {
            assert_eq!(parse(body.as_bytes()).unwrap(), serde_json::from_str::<Value>(body).unwrap(), "{body}");
        }
        assert_eq!(parse(b" {\"a\":1} \n").unwrap(), json!({"a": 1}));
    }

    #[test]
    fn refuses_a_key_named_twice_at_any_depth() {
        let top = refused(r#"{"requestId":"r1","content":"hi","content":"bye"}"#);
        assert_eq!(
            top,
            Refused { request_id: Some("r1".into()), reason: "the key `content` appears twice in one object".into() }
        );
        let deep = refused(r#"{"a":[{"b":{"x":1,"x":1}}],"requestId":"late"}"#);
        assert_eq!(deep.request_id, None);
        assert!(deep.reason.contains("`x` appears twice"), "{}", deep.reason);
        // The same key in sibling objects is fine.
        assert!(parse(br#"{"a":{"x":1},"b":{"x":2}}"#).is_ok());
    }

    #[test]
    fn says_what_is_wrong_and_keeps_the_request_id_read_before_the_fault() {
        let surrogate = refused(r#"{"action":"send_message","requestId":"r2","content":"\ud800"}"#);
        assert_eq!(surrogate.request_id.as_deref(), Some("r2"));
        assert!(surrogate.reason.contains("lone UTF-16 surrogate"), "{}", surrogate.reason);
        for other in [r#"{"a":"\udc00"}"#, r#"{"a":"\ud800\u0041"}"#] {
            assert!(refused(other).reason.starts_with("a \\u escape is not a character"), "{other}");
        }

        let deep = format!(r#"{{"requestId":"r3","x":{}{}}}"#, "[".repeat(200), "]".repeat(200));
        let deep = refused(&deep);
        assert_eq!(deep.request_id.as_deref(), Some("r3"));
        assert_eq!(deep.reason, "objects and arrays may nest at most 128 levels deep");

        assert_eq!(refused(r#"{"requestId":"r4","x":"#).reason, "the JSON ends too early");
        assert!(refused("not json").reason.starts_with("not valid JSON"));
        assert_eq!(refused(r#"{"requestId":"r5"} trailing"#).request_id.as_deref(), Some("r5"));
        // Only a string at the top level is a requestId.
        assert_eq!(refused(r#"{"requestId":7,"requestId":"x"}"#).request_id, None);
        assert_eq!(refused(r#"{"inner":{"requestId":"no"},"x":[}"#).request_id, None);
    }
}
