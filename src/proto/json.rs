//! serde helpers for the proto3-JSON mapping: int64 as a string out and a string or a
//! number in, doubles with proto3's `"NaN"`/`"Infinity"`, enums as names out and a name or
//! a number in, and the "leave zero values out" test. They know nothing about any one
//! message; the message types in this module's siblings pick them per field.

use std::fmt;

use serde::de::{self, Deserializer, Unexpected, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// `skip_serializing_if` for proto3's "a field at its zero value is left out":
/// `""`, `0`, `0.0`, `false`, an empty list, enum value 0.
pub fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

const INT64_EXPECTED: &str = "an int64 (a number or a numeric string)";

struct Int64Visitor;

impl Visitor<'_> for Int64Visitor {
    type Value = i64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(INT64_EXPECTED)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &self))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<i64, E> {
        // JSON has one number type: 5.0 and 5e3 are integers too; 5.5 is not.
        // The bounds are 2^63 exactly, so the cast below cannot saturate.
        if v.is_finite()
            && v.fract() == 0.0
            && (-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&v)
        {
            Ok(v as i64)
        } else {
            Err(E::invalid_value(Unexpected::Float(v), &self))
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<i64, E> {
        v.parse::<i64>()
            .map_err(|_| E::invalid_value(Unexpected::Str(v), &self))
    }
}

/// An int64 field: a JSON string out (`"1042"`), a number or a numeric string in.
/// Use as `#[serde(with = "int64")]`.
pub mod int64 {
    use super::*;

    pub fn serialize<S: Serializer>(v: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        d.deserialize_any(Int64Visitor)
    }
}

/// An int64 as a value of its own, for lists and options of int64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Int64(pub i64);

impl Serialize for Int64 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        int64::serialize(&self.0, s)
    }
}

impl<'de> Deserialize<'de> for Int64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        int64::deserialize(d).map(Int64)
    }
}

/// An optional int64 (`optional int64` in proto): present when `Some`, even when 0.
/// Pair with `skip_serializing_if = "Option::is_none"` and `default`.
pub mod opt_int64 {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.collect_str(v),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        Ok(Option::<Int64>::deserialize(d)?.map(|v| v.0))
    }
}

/// A repeated int64: a list of strings out, numbers or strings in.
pub mod vec_int64 {
    use super::*;

    pub fn serialize<S: Serializer>(v: &[i64], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(v.iter().map(|v| Int64(*v)))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<i64>, D::Error> {
        Ok(Vec::<Int64>::deserialize(d)?
            .into_iter()
            .map(|v| v.0)
            .collect())
    }
}

/// A repeated int64 whose presence matters (a selector's `ids`).
pub mod opt_vec_int64 {
    use super::*;

    pub fn serialize<S: Serializer>(v: &Option<Vec<i64>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => vec_int64::serialize(v, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<i64>>, D::Error> {
        Ok(Option::<Vec<Int64>>::deserialize(d)?.map(|v| v.into_iter().map(|v| v.0).collect()))
    }
}

struct DoubleVisitor;

impl Visitor<'_> for DoubleVisitor {
    type Value = f64;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
        Ok(v as f64)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
        Ok(v as f64)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
        Ok(v)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
        match v {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            _ => v
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| E::invalid_value(Unexpected::Str(v), &self)),
        }
    }
}

/// A double: a JSON number out, except proto3's `"NaN"`, `"Infinity"`, `"-Infinity"`
/// (plain serde_json would write `null`); a number or such a string in.
pub mod double {
    use super::*;

    pub fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if v.is_nan() {
            s.serialize_str("NaN")
        } else if v.is_infinite() {
            s.serialize_str(if *v > 0.0 { "Infinity" } else { "-Infinity" })
        } else {
            s.serialize_f64(*v)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        d.deserialize_any(DoubleVisitor)
    }
}

/// Reads a proto enum given as its name or its number (a JSON number or a numeric
/// string). Built by [`proto_enum!`]; not meant to be used directly.
#[doc(hidden)]
pub struct EnumVisitor<T> {
    pub what: &'static str,
    pub names: &'static [&'static str],
    pub from_name: fn(&str) -> Option<T>,
    pub from_i32: fn(i32) -> Option<T>,
}

impl<T> EnumVisitor<T> {
    fn by_number<E: de::Error>(&self, n: i64, unexp: Unexpected) -> Result<T, E> {
        i32::try_from(n)
            .ok()
            .and_then(self.from_i32)
            .ok_or_else(|| E::invalid_value(unexp, self))
    }
}

impl<T> Visitor<'_> for EnumVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} (", self.what)?;
        for name in self.names {
            write!(f, "{name}, ")?;
        }
        f.write_str("or its number)")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        self.by_number(v, Unexpected::Signed(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        match i64::try_from(v) {
            Ok(n) => self.by_number(n, Unexpected::Unsigned(v)),
            Err(_) => Err(E::invalid_value(Unexpected::Unsigned(v), &self)),
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        if let Some(t) = (self.from_name)(v) {
            return Ok(t);
        }
        match v.parse::<i64>() {
            Ok(n) => self.by_number(n, Unexpected::Str(v)),
            Err(_) => Err(E::invalid_value(Unexpected::Str(v), &self)),
        }
    }
}

/// Declares a proto enum: the Rust enum with `as_i32`, `from_i32`, `name`, `from_name`,
/// `Default` (the value 0, which must come first), and serde as name out, name or number
/// in. `$what` names the enum in error messages ("an operation status").
macro_rules! proto_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident ($what:literal) {
            $(#[$zmeta:meta])* $zero:ident = 0 => $zname:literal,
            $( $(#[$vmeta:meta])* $variant:ident = $num:literal => $vname:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
        $vis enum $name {
            $(#[$zmeta])*
            #[default]
            $zero = 0,
            $( $(#[$vmeta])* $variant = $num, )*
        }

        // Not every enum needs every helper.
        #[allow(dead_code)]
        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$name::$zero, $($name::$variant),*];
            /// Every proto name, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$zname, $($vname),*];

            pub fn as_i32(self) -> i32 {
                self as i32
            }

            pub fn from_i32(n: i32) -> Option<Self> {
                match n {
                    0 => Some(Self::$zero),
                    $( $num => Some(Self::$variant), )*
                    _ => None,
                }
            }

            /// The proto name, e.g. `STATUS_SUCCESS`.
            pub fn name(self) -> &'static str {
                match self {
                    Self::$zero => $zname,
                    $( Self::$variant => $vname, )*
                }
            }

            pub fn from_name(s: &str) -> Option<Self> {
                match s {
                    $zname => Some(Self::$zero),
                    $( $vname => Some(Self::$variant), )*
                    _ => None,
                }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_any($crate::proto::json::EnumVisitor {
                    what: $what,
                    names: Self::NAMES,
                    from_name: Self::from_name,
                    from_i32: Self::from_i32,
                })
            }
        }
    };
}
pub(crate) use proto_enum;

/// Backrest's hook conditions (`Hook.Condition`), for reading a number sent in place of
/// a name. The hook logic itself lives elsewhere; this is only the wire table.
pub const HOOK_CONDITIONS: &[(i32, &str)] = &[
    (0, "CONDITION_UNKNOWN"),
    (1, "CONDITION_ANY_ERROR"),
    (2, "CONDITION_SNAPSHOT_START"),
    (3, "CONDITION_SNAPSHOT_END"),
    (4, "CONDITION_SNAPSHOT_ERROR"),
    (5, "CONDITION_SNAPSHOT_WARNING"),
    (6, "CONDITION_SNAPSHOT_SUCCESS"),
    (7, "CONDITION_SNAPSHOT_SKIPPED"),
    (100, "CONDITION_PRUNE_START"),
    (101, "CONDITION_PRUNE_ERROR"),
    (102, "CONDITION_PRUNE_SUCCESS"),
    (200, "CONDITION_CHECK_START"),
    (201, "CONDITION_CHECK_ERROR"),
    (202, "CONDITION_CHECK_SUCCESS"),
    (300, "CONDITION_FORGET_START"),
    (301, "CONDITION_FORGET_ERROR"),
    (302, "CONDITION_FORGET_SUCCESS"),
];

/// A hook condition kept as its name: a name (any, so that conditions newer than this
/// table survive) or a known number in; `CONDITION_UNKNOWN` and 0 read as `""`, which is
/// left out on output like any enum 0.
pub mod condition_name {
    use super::*;

    struct ConditionVisitor;

    impl ConditionVisitor {
        fn by_number<E: de::Error>(self, n: i64, unexp: Unexpected) -> Result<String, E> {
            match HOOK_CONDITIONS.iter().find(|(k, _)| i64::from(*k) == n) {
                Some((0, _)) => Ok(String::new()),
                Some((_, name)) => Ok((*name).to_string()),
                None => Err(E::invalid_value(unexp, &self)),
            }
        }
    }

    impl Visitor<'_> for ConditionVisitor {
        type Value = String;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a hook condition (a name such as CONDITION_SNAPSHOT_END, or its number)")
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
            self.by_number(v, Unexpected::Signed(v))
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
            match i64::try_from(v) {
                Ok(n) => self.by_number(n, Unexpected::Unsigned(v)),
                Err(_) => Err(E::invalid_value(Unexpected::Unsigned(v), &self)),
            }
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
            if v == "CONDITION_UNKNOWN" {
                return Ok(String::new());
            }
            match v.parse::<i64>() {
                Ok(n) => self.by_number(n, Unexpected::Str(v)),
                Err(_) => Ok(v.to_string()),
            }
        }
    }

    pub fn serialize<S: Serializer>(v: &str, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        d.deserialize_any(ConditionVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::decode;
    use serde_json::json;

    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase", default)]
    struct Sample {
        #[serde(with = "int64", skip_serializing_if = "is_default")]
        count: i64,
        #[serde(with = "opt_int64", skip_serializing_if = "Option::is_none")]
        maybe: Option<i64>,
        #[serde(with = "vec_int64", skip_serializing_if = "is_default")]
        list: Vec<i64>,
        #[serde(with = "double", skip_serializing_if = "is_default")]
        ratio: f64,
        #[serde(skip_serializing_if = "is_default")]
        color: Color,
        #[serde(with = "condition_name", skip_serializing_if = "is_default")]
        condition: String,
    }

    proto_enum! {
        enum Color ("a color") {
            Unset = 0 => "COLOR_UNSET",
            Red = 1 => "COLOR_RED",
            Blue = 5 => "COLOR_BLUE",
        }
    }

    fn enc(s: &Sample) -> serde_json::Value {
        serde_json::to_value(s).unwrap()
    }

    #[test]
    fn int64_is_a_string_out_and_a_number_or_string_in() {
        let s = Sample {
            count: -9_007_199_254_740_993,
            ..Sample::default()
        };
        assert_eq!(enc(&s), json!({"count": "-9007199254740993"}));
        for input in [
            json!({"count": 42}),
            json!({"count": "42"}),
            json!({"count": 42.0}),
        ] {
            assert_eq!(
                decode::<Sample>(input.to_string().as_bytes())
                    .unwrap()
                    .count,
                42
            );
        }
        let big = decode::<Sample>(br#"{"count":"9223372036854775807"}"#).unwrap();
        assert_eq!(big.count, i64::MAX);
    }

    #[test]
    fn int64_rejects_what_is_not_an_integer() {
        for (input, got) in [
            (r#"{"count":"abc"}"#, r#""abc""#),
            (r#"{"count":1.5}"#, "1.5"),
            (r#"{"count":true}"#, "true"),
            (r#"{"count":""}"#, r#""""#),
            (r#"{"count":18446744073709551615}"#, "18446744073709551615"),
            (r#"{"count":[1]}"#, "a list"),
        ] {
            let err = decode::<Sample>(input.as_bytes()).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("count: expected an int64 (a number or a numeric string), got {got}"),
                "{input}"
            );
        }
    }

    #[test]
    fn optional_int64_appears_when_set_even_at_zero() {
        assert_eq!(enc(&Sample::default()), json!({}));
        let s = Sample {
            maybe: Some(0),
            ..Sample::default()
        };
        assert_eq!(enc(&s), json!({"maybe": "0"}));
        assert_eq!(
            decode::<Sample>(br#"{"maybe":"0"}"#).unwrap().maybe,
            Some(0)
        );
        assert_eq!(decode::<Sample>(br#"{"maybe":7}"#).unwrap().maybe, Some(7));
        assert_eq!(decode::<Sample>(br#"{"maybe":null}"#).unwrap().maybe, None);
        assert_eq!(decode::<Sample>(b"{}").unwrap().maybe, None);
    }

    #[test]
    fn repeated_int64_is_a_list_of_strings() {
        let s = Sample {
            list: vec![1, 2, 3],
            ..Sample::default()
        };
        assert_eq!(enc(&s), json!({"list": ["1", "2", "3"]}));
        assert_eq!(
            decode::<Sample>(br#"{"list":[1,"2",3]}"#).unwrap().list,
            [1, 2, 3]
        );
        let err = decode::<Sample>(br#"{"list":[1,"x"]}"#).unwrap_err();
        assert_eq!(err.path, "list[1]");
    }

    #[test]
    fn doubles_follow_proto3_for_special_values() {
        let s = Sample {
            ratio: f64::INFINITY,
            ..Sample::default()
        };
        assert_eq!(enc(&s), json!({"ratio": "Infinity"}));
        let s = Sample {
            ratio: 0.25,
            ..Sample::default()
        };
        assert_eq!(enc(&s), json!({"ratio": 0.25}));
        assert!(
            decode::<Sample>(br#"{"ratio":"NaN"}"#)
                .unwrap()
                .ratio
                .is_nan()
        );
        assert_eq!(decode::<Sample>(br#"{"ratio":"0.5"}"#).unwrap().ratio, 0.5);
        assert_eq!(decode::<Sample>(br#"{"ratio":2}"#).unwrap().ratio, 2.0);
        assert!(decode::<Sample>(br#"{"ratio":"half"}"#).is_err());
    }

    #[test]
    fn enums_are_names_out_and_names_or_numbers_in() {
        let s = Sample {
            color: Color::Blue,
            ..Sample::default()
        };
        assert_eq!(enc(&s), json!({"color": "COLOR_BLUE"}));
        for input in [r#""COLOR_BLUE""#, "5", r#""5""#] {
            let body = format!(r#"{{"color":{input}}}"#);
            assert_eq!(
                decode::<Sample>(body.as_bytes()).unwrap().color,
                Color::Blue
            );
        }
        assert_eq!(Color::from_i32(1), Some(Color::Red));
        assert_eq!(Color::from_i32(2), None);
        assert_eq!(Color::from_name("COLOR_UNSET"), Some(Color::Unset));
        assert_eq!(Color::Blue.as_i32(), 5);
        assert_eq!(Color::default(), Color::Unset);
        let err = decode::<Sample>(br#"{"color":"PURPLE"}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"color: expected a color (COLOR_UNSET, COLOR_RED, COLOR_BLUE, or its number), got "PURPLE""#
        );
        let err = decode::<Sample>(br#"{"color":3}"#).unwrap_err();
        assert!(err.to_string().ends_with("got 3"), "{err}");
    }

    #[test]
    fn hook_conditions_are_kept_as_names() {
        assert_eq!(
            decode::<Sample>(br#"{"condition":3}"#).unwrap().condition,
            "CONDITION_SNAPSHOT_END"
        );
        assert_eq!(
            decode::<Sample>(br#"{"condition":"CONDITION_FUTURE_THING"}"#)
                .unwrap()
                .condition,
            "CONDITION_FUTURE_THING"
        );
        assert_eq!(
            decode::<Sample>(br#"{"condition":"CONDITION_UNKNOWN"}"#)
                .unwrap()
                .condition,
            ""
        );
        assert_eq!(
            decode::<Sample>(br#"{"condition":0}"#).unwrap().condition,
            ""
        );
        assert!(decode::<Sample>(br#"{"condition":99}"#).is_err());
    }
}
