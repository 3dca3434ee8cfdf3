//! Smithy RPC v2 CBOR ↔ AWS JSON, so SDKs that speak only CBOR (CloudWatch) can reach moto,
//! which speaks JSON. Used by the recording stub; moto keeps the state.

use ciborium::Value as Cbor;
use serde_json::{Map, Number, Value as Json};

/// CBOR tag 1: epoch-based date/time, which rpcv2Cbor uses for every timestamp.
const EPOCH_TAG: u64 = 1;

pub fn to_json(value: &Cbor) -> Json {
    match value {
        Cbor::Null => Json::Null,
        Cbor::Bool(b) => Json::Bool(*b),
        Cbor::Integer(i) => {
            let n: i128 = (*i).into();
            i64::try_from(n).map(Json::from).unwrap_or(Json::Null)
        }
        Cbor::Float(f) => Number::from_f64(*f).map(Json::Number).unwrap_or(Json::Null),
        Cbor::Text(t) => Json::String(t.clone()),
        Cbor::Bytes(b) => Json::String(String::from_utf8_lossy(b).into_owned()),
        Cbor::Array(items) => Json::Array(items.iter().map(to_json).collect()),
        Cbor::Map(entries) => Json::Object(
            entries
                .iter()
                .filter_map(|(k, v)| Some((k.as_text()?.to_owned(), to_json(v))))
                .collect::<Map<_, _>>(),
        ),
        Cbor::Tag(_, inner) => to_json(inner),
        _ => Json::Null,
    }
}

/// JSON numbers keep their kind (`1.0` stays a float, which the SDK's decoder requires for
/// doubles); a field whose name ends in `Timestamp` becomes a tag-1 timestamp.
pub fn from_json(value: &Json) -> Cbor {
    from_json_field(value, false)
}

fn from_json_field(value: &Json, is_timestamp: bool) -> Cbor {
    let plain = match value {
        Json::Null => Cbor::Null,
        Json::Bool(b) => Cbor::Bool(*b),
        Json::Number(n) if n.is_f64() => Cbor::Float(n.as_f64().unwrap_or(0.0)),
        Json::Number(n) => n
            .as_i64()
            .map(|i| Cbor::Integer(i.into()))
            .unwrap_or(Cbor::Null),
        Json::String(s) => Cbor::Text(s.clone()),
        Json::Array(items) => {
            Cbor::Array(items.iter().map(|v| from_json_field(v, false)).collect())
        }
        Json::Object(fields) => Cbor::Map(
            fields
                .iter()
                .map(|(k, v)| {
                    (
                        Cbor::Text(k.clone()),
                        from_json_field(v, k.ends_with("Timestamp")),
                    )
                })
                .collect(),
        ),
    };
    match (is_timestamp, &plain) {
        (true, Cbor::Float(_) | Cbor::Integer(_)) => Cbor::Tag(EPOCH_TAG, Box::new(plain)),
        _ => plain,
    }
}

pub fn decode(bytes: &[u8]) -> Json {
    if bytes.is_empty() {
        return Json::Object(Map::new());
    }
    ciborium::from_reader::<Cbor, _>(bytes)
        .map(|v| to_json(&v))
        .unwrap_or(Json::Null)
}

pub fn encode(value: &Json) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail for a value built from JSON.
    let _ = ciborium::into_writer(&from_json(value), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn timestamps_are_tagged_and_floats_stay_floats() {
        let v = json!({"MetricAlarms": [{"StateUpdatedTimestamp": 1700000000.5, "Threshold": 1.0, "EvaluationPeriods": 1}]});
        let Cbor::Map(top) = from_json(&v) else {
            panic!()
        };
        let Cbor::Array(alarms) = &top[0].1 else {
            panic!()
        };
        let Cbor::Map(alarm) = &alarms[0] else {
            panic!()
        };
        let field = |name: &str| {
            alarm
                .iter()
                .find(|(k, _)| k.as_text() == Some(name))
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        assert!(matches!(field("StateUpdatedTimestamp"), Cbor::Tag(1, _)));
        assert!(matches!(field("Threshold"), Cbor::Float(_)));
        assert!(matches!(field("EvaluationPeriods"), Cbor::Integer(_)));
    }

    #[test]
    fn round_trip_keeps_values() {
        let v = json!({"AlarmNames": ["api-5xx"], "MaxRecords": 100, "Flag": true});
        assert_eq!(decode(&encode(&v)), v);
    }
}
