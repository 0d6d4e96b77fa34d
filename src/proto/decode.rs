//! Lenient decoding of request bodies with errors that name the field. The body is parsed
//! into a `serde_json::Value` first (so syntax errors keep serde_json's line and column),
//! then walked by a small deserializer that remembers where it is (`selector.ids[2]`)
//! and treats a `null` member as absent ("null = not set"). It knows no message types
//! and never decides what a field means.

use std::fmt;

use serde::de::value::BorrowedStrDeserializer;
use serde::de::{self, DeserializeOwned, DeserializeSeed, Expected, Unexpected, Visitor};
use serde_json::{Map, Value};

/// A body that could not be decoded. `path` is where (`selector.flowId`, `ids[2]`, empty
/// for the whole body); `message` says what was expected and what came. The API turns
/// this into `400 invalid_argument` with the Display text as the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for DecodeError {}

/// Decodes a request body. An empty (or all-whitespace) body counts as `{}`.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, DecodeError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return decode_value(&Value::Object(Map::new()));
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| DecodeError {
        path: String::new(),
        message: format!("malformed JSON: {e}"),
    })?;
    decode_value(&value)
}

/// Decodes an already parsed JSON value with the same rules as [`decode`].
pub fn decode_value<T: DeserializeOwned>(value: &Value) -> Result<T, DecodeError> {
    T::deserialize(ValueDe {
        value,
        path: &Path::Root,
    })
    .map_err(|e| {
        let e = e.at(&Path::Root);
        DecodeError {
            path: e.path.unwrap_or_default(),
            message: e.message,
        }
    })
}

/// Where the walker is, as a chain of borrowed steps (formatted only on error).
enum Path<'p> {
    Root,
    Key(&'p Path<'p>, &'p str),
    Index(&'p Path<'p>, usize),
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Key(Path::Root, k) => f.write_str(k),
            Path::Key(p, k) => write!(f, "{p}.{k}"),
            Path::Index(p, i) => write!(f, "{p}[{i}]"),
        }
    }
}

/// The serde error while walking; the path is filled in by the innermost step that
/// sees the error, so the deepest location wins.
#[derive(Debug)]
pub(crate) struct DeError {
    path: Option<String>,
    message: String,
}

impl DeError {
    fn at(mut self, path: &Path) -> Self {
        if self.path.is_none() {
            self.path = Some(path.to_string());
        }
        self
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match &self.path {
            Some(p) if !p.is_empty() => write!(f, "{p}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for DeError {}

/// serde's own words for what it expected, in the words of a JSON user.
fn expected_text(exp: &dyn Expected) -> String {
    let text = exp.to_string();
    if text.starts_with("struct ") || text == "a map" {
        "an object".to_string()
    } else if text == "a sequence" {
        "a list".to_string()
    } else if text == "i32" || text == "i64" || text == "u32" || text == "u64" {
        "an integer".to_string()
    } else if text == "f64" || text == "f32" {
        "a number".to_string()
    } else {
        text
    }
}

fn unexpected_text(unexp: Unexpected) -> String {
    match unexp {
        Unexpected::Bool(b) => b.to_string(),
        Unexpected::Unsigned(n) => n.to_string(),
        Unexpected::Signed(n) => n.to_string(),
        Unexpected::Float(n) => n.to_string(),
        Unexpected::Str(s) => Value::String(s.to_string()).to_string(),
        Unexpected::Unit => "null".to_string(),
        Unexpected::Seq => "a list".to_string(),
        Unexpected::Map => "an object".to_string(),
        other => other.to_string(),
    }
}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            path: None,
            message: msg.to_string(),
        }
    }

    fn invalid_type(unexp: Unexpected, exp: &dyn Expected) -> Self {
        Self::custom(format_args!(
            "expected {}, got {}",
            expected_text(exp),
            unexpected_text(unexp)
        ))
    }

    fn invalid_value(unexp: Unexpected, exp: &dyn Expected) -> Self {
        Self::invalid_type(unexp, exp)
    }

    fn invalid_length(len: usize, exp: &dyn Expected) -> Self {
        Self::custom(format_args!(
            "expected {}, got a list of {len}",
            expected_text(exp)
        ))
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        Self::custom(format_args!(
            "unknown value {}, expected one of {}",
            Value::String(variant.to_string()),
            expected.join(", ")
        ))
    }

    fn missing_field(field: &'static str) -> Self {
        Self::custom(format_args!("missing field {field}"))
    }

    fn duplicate_field(field: &'static str) -> Self {
        Self::custom(format_args!("{field} is given twice"))
    }
}

struct ValueDe<'de, 'p> {
    value: &'de Value,
    path: &'p Path<'p>,
}

impl<'de> de::Deserializer<'de> for ValueDe<'de, '_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    visitor.visit_u64(u)
                } else if let Some(i) = n.as_i64() {
                    visitor.visit_i64(i)
                } else {
                    visitor.visit_f64(n.as_f64().unwrap_or(f64::NAN))
                }
            }
            Value::String(s) => visitor.visit_borrowed_str(s),
            Value::Array(items) => {
                let mut seq = SeqDe {
                    items: items.iter().enumerate(),
                    path: self.path,
                };
                let v = visitor.visit_seq(&mut seq)?;
                match seq.items.len() {
                    0 => Ok(v),
                    _ => Err(de::Error::invalid_length(items.len(), &"fewer elements")),
                }
            }
            Value::Object(map) => visitor.visit_map(MapDe {
                entries: map.iter(),
                pending: None,
                path: self.path,
            }),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match self.value {
            Value::Null => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        match self.value {
            Value::String(s) => visitor.visit_enum(BorrowedStrDeserializer::new(s)),
            Value::Object(map) => {
                let mut set = map.iter().filter(|(_, v)| !v.is_null());
                match (set.next(), set.next()) {
                    (Some((key, value)), None) => visitor.visit_enum(EnumDe {
                        key,
                        value,
                        path: self.path,
                    }),
                    _ => Err(de::Error::invalid_value(
                        Unexpected::Map,
                        &"an object with exactly one member",
                    )),
                }
            }
            other => Err(de::Error::invalid_type(unexpected_of(other), &visitor)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        // serde lets a struct be read from a list of its fields in order; JSON messages
        // are objects only.
        match self.value {
            Value::Array(_) => Err(de::Error::invalid_type(Unexpected::Seq, &"an object")),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map identifier
    }
}

fn unexpected_of(value: &Value) -> Unexpected<'_> {
    match value {
        Value::Null => Unexpected::Unit,
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Unexpected::Unsigned(u),
            (_, Some(i)) => Unexpected::Signed(i),
            _ => Unexpected::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => Unexpected::Str(s),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(_) => Unexpected::Map,
    }
}

struct SeqDe<'de, 'p> {
    items: std::iter::Enumerate<std::slice::Iter<'de, Value>>,
    path: &'p Path<'p>,
}

impl<'de> de::SeqAccess<'de> for SeqDe<'de, '_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.items.next() {
            None => Ok(None),
            Some((i, value)) => {
                let path = Path::Index(self.path, i);
                seed.deserialize(ValueDe { value, path: &path })
                    .map(Some)
                    .map_err(|e| e.at(&path))
            }
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct MapDe<'de, 'p> {
    entries: serde_json::map::Iter<'de>,
    pending: Option<(&'de str, &'de Value)>,
    path: &'p Path<'p>,
}

impl<'de> de::MapAccess<'de> for MapDe<'de, '_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        // A member set to null is a member not set: skip it entirely.
        for (key, value) in self.entries.by_ref() {
            if value.is_null() {
                continue;
            }
            self.pending = Some((key, value));
            return seed
                .deserialize(BorrowedStrDeserializer::new(key))
                .map(Some);
        }
        Ok(None)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let (key, value) = self
            .pending
            .take()
            .ok_or_else(|| de::Error::custom("a value was asked for before its key"))?;
        let path = Path::Key(self.path, key);
        seed.deserialize(ValueDe { value, path: &path })
            .map_err(|e| e.at(&path))
    }
}

struct EnumDe<'de, 'p> {
    key: &'de str,
    value: &'de Value,
    path: &'p Path<'p>,
}

impl<'de, 'p> de::EnumAccess<'de> for EnumDe<'de, 'p> {
    type Error = DeError;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), DeError> {
        let variant = seed
            .deserialize(BorrowedStrDeserializer::<DeError>::new(self.key))
            .map_err(|e| e.at(self.path))?;
        Ok((variant, self))
    }
}

impl<'de> de::VariantAccess<'de> for EnumDe<'de, '_> {
    type Error = DeError;

    fn unit_variant(self) -> Result<(), DeError> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, DeError> {
        let path = Path::Key(self.path, self.key);
        seed.deserialize(ValueDe {
            value: self.value,
            path: &path,
        })
        .map_err(|e| e.at(&path))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, DeError> {
        let path = Path::Key(self.path, self.key);
        de::Deserializer::deserialize_any(
            ValueDe {
                value: self.value,
                path: &path,
            },
            visitor,
        )
        .map_err(|e| e.at(&path))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.tuple_variant(0, visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Default, PartialEq, Deserialize)]
    #[serde(rename_all = "camelCase", default)]
    struct Inner {
        name: String,
        #[serde(alias = "dry_run")]
        dry_run: bool,
    }

    #[derive(Debug, Default, PartialEq, Deserialize)]
    #[serde(rename_all = "camelCase", default)]
    struct Outer {
        inner: Option<Inner>,
        items: Vec<Inner>,
        count: i32,
        mode: Option<Mode>,
    }

    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(rename_all = "camelCase")]
    enum Mode {
        Fast,
        Slow { level: i32 },
    }

    #[test]
    fn empty_body_is_an_empty_object() {
        assert_eq!(decode::<Outer>(b"").unwrap(), Outer::default());
        assert_eq!(decode::<Outer>(b" \n").unwrap(), Outer::default());
    }

    #[test]
    fn null_means_not_set() {
        let v: Outer = decode(br#"{"inner":null,"items":null,"count":null}"#).unwrap();
        assert_eq!(v, Outer::default());
        let v: Outer = decode(br#"{"inner":{"name":null,"dryRun":true}}"#).unwrap();
        assert_eq!(
            v.inner,
            Some(Inner {
                name: String::new(),
                dry_run: true
            })
        );
    }

    #[test]
    fn unknown_fields_are_ignored_and_snake_case_is_accepted() {
        let v: Outer =
            decode(br#"{"other":{"deep":[1,2]},"inner":{"dry_run":true,"x":1}}"#).unwrap();
        assert!(v.inner.unwrap().dry_run);
    }

    #[test]
    fn errors_name_the_field_as_sent() {
        let err = decode::<Outer>(br#"{"items":[{"name":"a"},{"dry_run":"yes"}]}"#).unwrap_err();
        assert_eq!(err.path, "items[1].dry_run");
        assert_eq!(
            err.to_string(),
            r#"items[1].dry_run: expected a boolean, got "yes""#
        );
        let err = decode::<Outer>(br#"{"inner":"x"}"#).unwrap_err();
        assert_eq!(err.to_string(), r#"inner: expected an object, got "x""#);
        let err = decode::<Outer>(br#"{"items":{}}"#).unwrap_err();
        assert_eq!(err.to_string(), "items: expected a list, got an object");
        let err = decode::<Outer>(br#"{"count":"x"}"#).unwrap_err();
        assert_eq!(err.to_string(), r#"count: expected an integer, got "x""#);
        let err = decode::<Outer>(b"[]").unwrap_err();
        assert_eq!(err.to_string(), "expected an object, got a list");
    }

    #[test]
    fn malformed_json_says_where() {
        let err = decode::<Outer>(b"{\"count\": 1,").unwrap_err();
        assert_eq!(err.path, "");
        assert!(err.message.starts_with("malformed JSON: "), "{err}");
        assert!(err.message.contains("line 1 column"), "{err}");
    }

    #[test]
    fn enums_decode_from_names_and_one_member_objects() {
        let v: Outer = decode(br#"{"mode":"fast"}"#).unwrap();
        assert_eq!(v.mode, Some(Mode::Fast));
        let v: Outer = decode(br#"{"mode":{"slow":{"level":3}}}"#).unwrap();
        assert_eq!(v.mode, Some(Mode::Slow { level: 3 }));
        let err = decode::<Outer>(br#"{"mode":{"slow":{"level":"x"}}}"#).unwrap_err();
        assert_eq!(err.path, "mode.slow.level");
        let err = decode::<Outer>(br#"{"mode":"medium"}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"mode: unknown value "medium", expected one of fast, slow"#
        );
    }
}
