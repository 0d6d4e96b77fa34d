//! The config's proto3 JSON mapping, both ways: [`Obj`] reads, [`Out`] writes.
//!
//! Reading is lenient: camelCase or snake_case keys, integers as numbers or numeric
//! strings, enums as names or numbers, `null` as "not set". Every problem is collected
//! (not just the first) and named by its place, e.g.
//! `plans[1] "photos": schedule.clock has unknown value "X"; ...`.
//!
//! Nothing is lost: keys a struct does not know go to its `extra`, and so do known keys
//! that were present at their zero value or `null` ("shadows"). Backrest writes its
//! file with every field, zeros included (protojson's EmitUnpopulated), so those keys
//! are common; writing puts each shadow back in its place unless the field now has a
//! value, and leaves zeros out otherwise, as proto3 JSON does.
//!
//! It must not judge meaning (ranges, references between sections): that is
//! `validate`'s job. It never puts the value of a string field in a message, because
//! string fields may hold secrets.

use serde_json::{Map, Value};
use std::fmt;

/// Where a value sits in the config, for messages. `owner` names a repo, plan or user
/// (`plans[1] "photos"`); `path` is the field path inside it (`schedule.clock`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Loc {
    owner: String,
    path: String,
}

impl Loc {
    pub(crate) fn root() -> Loc {
        Loc::default()
    }

    /// A place named by a list entry of the top level, e.g. `repos[0] "nas"`.
    pub(crate) fn entry(list: &str, index: usize, id: &str) -> Loc {
        Loc {
            owner: entry_name(list, index, id),
            path: String::new(),
        }
    }

    pub(crate) fn field(&self, name: &str) -> Loc {
        let path = if self.path.is_empty() {
            name.to_string()
        } else {
            format!("{}.{}", self.path, name)
        };
        Loc {
            owner: self.owner.clone(),
            path,
        }
    }

    pub(crate) fn index(&self, i: usize) -> Loc {
        Loc {
            owner: self.owner.clone(),
            path: format!("{}[{}]", self.path, i),
        }
    }

    /// The element `i` of the list at this place, owned by its id (`auth.users[0] "admin"`).
    fn owned_entry(&self, i: usize, id: &str) -> Loc {
        Loc {
            owner: entry_name(&self.name(), i, id),
            path: String::new(),
        }
    }

    /// The place itself, e.g. `plans[1] "photos"` or `auth.users[0]`.
    pub(crate) fn name(&self) -> String {
        match (self.owner.is_empty(), self.path.is_empty()) {
            (false, false) => format!("{}: {}", self.owner, self.path),
            (false, true) => self.owner.clone(),
            (true, _) => self.path.clone(),
        }
    }

    fn is_root(&self) -> bool {
        self.owner.is_empty() && self.path.is_empty()
    }

    /// A message about this place: `owner: path text`, parts left out when empty.
    pub(crate) fn say(&self, text: impl fmt::Display) -> String {
        match (self.owner.is_empty(), self.path.is_empty()) {
            (false, false) => format!("{}: {} {}", self.owner, self.path, text),
            (false, true) => format!("{}: {}", self.owner, text),
            (true, false) => format!("{} {}", self.path, text),
            (true, true) => text.to_string(),
        }
    }
}

/// `plans[1] "photos"`, or `plans[1]` when the id is empty.
pub(crate) fn entry_name(list: &str, index: usize, id: &str) -> String {
    if id.is_empty() {
        format!("{list}[{index}]")
    } else {
        format!("{list}[{index}] {id:?}")
    }
}

/// A proto enum: known by name and by number; the value numbered 0 is the default.
pub trait ProtoEnum: Sized + Copy + 'static {
    /// Every value, the default (number 0) first.
    const ALL: &'static [Self];
    fn name(self) -> &'static str;
    fn number(self) -> i32;

    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|v| v.name() == name)
    }

    fn from_number(number: i64) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|v| i64::from(v.number()) == number)
    }

    /// `A, B, C`: the names, for messages.
    fn names() -> String {
        Self::ALL
            .iter()
            .map(|v| v.name())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Declares a proto enum with its names and numbers; it serializes as its name and
/// reads a name or a number.
macro_rules! proto_enum {
    ($(#[$meta:meta])* pub enum $name:ident {
        $($(#[$vmeta:meta])* $variant:ident = $number:literal => $text:literal,)+
    }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant = $number,)+
        }

        impl $crate::config::json::ProtoEnum for $name {
            const ALL: &'static [Self] = &[$($name::$variant,)+];
            fn name(self) -> &'static str {
                match self { $($name::$variant => $text,)+ }
            }
            fn number(self) -> i32 {
                self as i32
            }
        }

        impl $name {
            /// The proto name, e.g. as written in config.json.
            pub fn name(self) -> &'static str {
                $crate::config::json::ProtoEnum::name(self)
            }
            /// The proto number.
            pub fn number(self) -> i32 {
                self as i32
            }
            /// True for the value numbered 0 (left out when written).
            pub fn is_default(&self) -> bool {
                (*self as i32) == 0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                <$name as $crate::config::json::ProtoEnum>::ALL[0]
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.name())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let value = serde_json::Value::deserialize(d)?;
                let mut errors = Vec::new();
                let loc = $crate::config::json::Loc::root();
                match $crate::config::json::enum_value::<$name>(value, &loc, &mut errors) {
                    Some(v) => Ok(v),
                    None => Err(serde::de::Error::custom(errors.join("; "))),
                }
            }
        }
    };
}
pub(crate) use proto_enum;

/// A struct read from a JSON object through [`Obj`].
pub(crate) trait FromJson: Sized {
    /// The key whose value names an element in messages (`"id"` for repos and plans),
    /// so that `plans[1]` reads as `plans[1] "photos"`.
    const NAME_KEY: Option<&'static str> = None;
    fn read(obj: Obj<'_>) -> Self;
}

/// Reads `value` as a `T`, returning every problem found if there are any.
pub(crate) fn from_value<T: FromJson>(value: Value, loc: &Loc) -> Result<T, Vec<String>> {
    let mut errors = Vec::new();
    let read = Obj::new(value, loc.clone(), &mut errors).map(T::read);
    match read {
        Some(t) if errors.is_empty() => Ok(t),
        _ => Err(errors),
    }
}

/// Implements `Deserialize` for config structs through [`FromJson`], so that other
/// modules can use serde and still get the same lenient reading and messages.
macro_rules! deserialize_from_json {
    ($($t:ty),+ $(,)?) => {$(
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let value = serde_json::Value::deserialize(d)?;
                $crate::config::json::from_value::<$t>(value, &$crate::config::json::Loc::root())
                    .map_err(|errors| serde::de::Error::custom(errors.join("; ")))
            }
        }
    )+};
}
pub(crate) use deserialize_from_json;

/// The camelCase key's snake_case twin: `maxFrequencyDays` → `max_frequency_days`.
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// "a string", "a list", ...: what a JSON value is, for messages (never its content).
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn type_error(loc: &Loc, expected: &str, value: &Value) -> String {
    if loc.is_root() {
        format!("the document must be {expected}, not {}", kind(value))
    } else {
        loc.say(format_args!("must be {expected}, not {}", kind(value)))
    }
}

/// A JSON object being read: known keys are taken out one by one, and what is left
/// is the struct's `extra`.
pub(crate) struct Obj<'e> {
    map: Map<String, Value>,
    /// Known keys that were present at their zero value (or `null`), as they were
    /// written, so that they are written back in place (see [`Out`]).
    shadows: Map<String, Value>,
    loc: Loc,
    errors: &'e mut Vec<String>,
}

impl<'e> Obj<'e> {
    /// Starts reading `value`, or records a problem and gives `None` if it is not an object.
    pub(crate) fn new(value: Value, loc: Loc, errors: &'e mut Vec<String>) -> Option<Obj<'e>> {
        match value {
            Value::Object(map) => Some(Obj {
                map,
                shadows: Map::new(),
                loc,
                errors,
            }),
            other => {
                errors.push(type_error(&loc, "an object", &other));
                None
            }
        }
    }

    /// Removes the field under its camelCase or snake_case name. `null` counts as
    /// absent (and is kept as a shadow so it is written back).
    fn take_keyed(&mut self, name: &str) -> Option<(String, Value, Loc)> {
        let loc = self.loc.field(name);
        let snake = snake_case(name);
        // shift_remove, not remove: with preserve_order, remove() swaps the last key
        // into the hole, which reordered the unknown keys left behind on each save.
        let main = self.map.shift_remove(name).map(|v| (name.to_string(), v));
        let alias = if snake == name {
            None
        } else {
            self.map.shift_remove(&snake).map(|v| (snake.clone(), v))
        };
        let (key, value) = match (main, alias) {
            (Some(m), Some(_)) => {
                self.errors.push(loc.say(format_args!(
                    "is given twice, as {name:?} and {snake:?}; keep one"
                )));
                m
            }
            (Some(m), None) => m,
            (None, Some(a)) => a,
            (None, None) => return None,
        };
        if value.is_null() {
            self.shadows.insert(key, Value::Null);
            return None;
        }
        Some((key, value, loc))
    }

    fn take(&mut self, name: &str) -> Option<(Value, Loc)> {
        self.take_keyed(name).map(|(_, v, loc)| (v, loc))
    }

    /// Takes a field without explicit presence: a zero value reads as "not set", and
    /// the key is remembered as it was written so that it is written back.
    fn take_implicit<T>(
        &mut self,
        name: &str,
        read: impl FnOnce(Value, &Loc, &mut Vec<String>) -> Option<T>,
        is_zero: impl FnOnce(&T) -> bool,
    ) -> Option<T> {
        let (key, value, loc) = self.take_keyed(name)?;
        let original = value.clone();
        let read = read(value, &loc, self.errors)?;
        if is_zero(&read) {
            self.shadows.insert(key, original);
        }
        Some(read)
    }

    /// What is left: the keys this struct does not know, plus the shadows of known
    /// keys that were present at their zero value; all kept as they were.
    pub(crate) fn finish(mut self) -> Map<String, Value> {
        self.map.append(&mut self.shadows);
        self.map
    }

    pub(crate) fn string(&mut self, name: &str) -> String {
        self.take_implicit(name, string_value, String::is_empty)
            .unwrap_or_default()
    }

    /// A string with explicit presence (a oneof member): `""` is a value.
    pub(crate) fn opt_string(&mut self, name: &str) -> Option<String> {
        let (value, loc) = self.take(name)?;
        string_value(value, &loc, self.errors)
    }

    pub(crate) fn bool(&mut self, name: &str) -> bool {
        self.take_implicit(name, bool_value, |b| !*b)
            .unwrap_or(false)
    }

    /// A boolean with explicit presence: `false` is a value.
    pub(crate) fn opt_bool(&mut self, name: &str) -> Option<bool> {
        let (value, loc) = self.take(name)?;
        bool_value(value, &loc, self.errors)
    }

    pub(crate) fn i32(&mut self, name: &str) -> i32 {
        self.take_implicit(name, i32_value, |n| *n == 0)
            .unwrap_or(0)
    }

    /// An int32 with explicit presence: `0` is a value.
    pub(crate) fn opt_i32(&mut self, name: &str) -> Option<i32> {
        let (value, loc) = self.take(name)?;
        i32_value(value, &loc, self.errors)
    }

    pub(crate) fn i64(&mut self, name: &str) -> i64 {
        self.take_implicit(name, int_value, |n| *n == 0)
            .unwrap_or(0)
    }

    /// An int64 with explicit presence: `0` is a value.
    pub(crate) fn opt_i64(&mut self, name: &str) -> Option<i64> {
        let (value, loc) = self.take(name)?;
        int_value(value, &loc, self.errors)
    }

    /// An int64 without explicit presence, as an `Option`: `0` reads as `None`.
    pub(crate) fn nonzero_i64(&mut self, name: &str) -> Option<i64> {
        self.take_implicit(name, int_value, |n| *n == 0)
            .filter(|n| *n != 0)
    }

    /// A double with explicit presence: `0` is a value.
    pub(crate) fn opt_f64(&mut self, name: &str) -> Option<f64> {
        let (value, loc) = self.take(name)?;
        f64_value(value, &loc, self.errors)
    }

    /// A double without explicit presence, as an `Option`: `0` reads as `None`.
    pub(crate) fn nonzero_f64(&mut self, name: &str) -> Option<f64> {
        self.take_implicit(name, f64_value, |n| *n == 0.0)
            .filter(|n| *n != 0.0)
    }

    pub(crate) fn strings(&mut self, name: &str) -> Vec<String> {
        self.take_implicit(
            name,
            |v, loc, errors| Some(list_value(v, loc, errors, string_value)),
            Vec::is_empty,
        )
        .unwrap_or_default()
    }

    pub(crate) fn enumeration<E: ProtoEnum>(&mut self, name: &str) -> E {
        self.take_implicit(name, enum_value::<E>, |e| e.number() == 0)
            .unwrap_or(E::ALL[0])
    }

    pub(crate) fn enumerations<E: ProtoEnum>(&mut self, name: &str) -> Vec<E> {
        self.take_implicit(
            name,
            |v, loc, errors| Some(list_value(v, loc, errors, enum_value::<E>)),
            Vec::is_empty,
        )
        .unwrap_or_default()
    }

    pub(crate) fn object<T: FromJson>(&mut self, name: &str) -> Option<T> {
        let (value, loc) = self.take(name)?;
        Obj::new(value, loc, self.errors).map(T::read)
    }

    pub(crate) fn objects<T: FromJson>(&mut self, name: &str) -> Vec<T> {
        self.take_implicit(name, objects_value::<T>, Vec::is_empty)
            .unwrap_or_default()
    }
}

fn objects_value<T: FromJson>(value: Value, loc: &Loc, errors: &mut Vec<String>) -> Option<Vec<T>> {
    let items = match value {
        Value::Array(items) => items,
        other => {
            errors.push(type_error(loc, "a list", &other));
            return None;
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let item_loc = match T::NAME_KEY {
            Some(key) => {
                let id = item.get(key).and_then(Value::as_str).unwrap_or("");
                loc.owned_entry(i, id)
            }
            None => loc.index(i),
        };
        if let Some(obj) = Obj::new(item, item_loc, errors) {
            out.push(T::read(obj));
        }
    }
    Some(out)
}

fn bool_value(value: Value, loc: &Loc, errors: &mut Vec<String>) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(b),
        other => {
            errors.push(type_error(loc, "true or false", &other));
            None
        }
    }
}

fn i32_value(value: Value, loc: &Loc, errors: &mut Vec<String>) -> Option<i32> {
    let n = int_value(value, loc, errors)?;
    match i32::try_from(n) {
        Ok(n) => Some(n),
        Err(_) => {
            errors.push(loc.say(format_args!(
                "{n} is out of range (a 32-bit number, at most {})",
                i32::MAX
            )));
            None
        }
    }
}

fn f64_value(value: Value, loc: &Loc, errors: &mut Vec<String>) -> Option<f64> {
    let n = match &value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    match n {
        Some(n) if n.is_finite() => Some(n),
        _ => {
            errors.push(not_a_number(loc, "a number", &value));
            None
        }
    }
}

fn string_value(value: Value, loc: &Loc, errors: &mut Vec<String>) -> Option<String> {
    match value {
        Value::String(s) => Some(s),
        other => {
            errors.push(type_error(loc, "a string", &other));
            None
        }
    }
}

fn not_a_number(loc: &Loc, expected: &str, value: &Value) -> String {
    match value {
        // A string in a number field is shown: number fields hold no secrets.
        Value::String(s) => loc.say(format_args!("must be {expected}, not {s:?}")),
        other => type_error(loc, expected, other),
    }
}

/// An integer given as a number (`5`, `5.0`) or a numeric string (`"5"`).
fn int_value(value: Value, loc: &Loc, errors: &mut Vec<String>) -> Option<i64> {
    let n = match &value {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                .map(|f| f as i64)
        }),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    if n.is_none() {
        errors.push(not_a_number(loc, "a whole number", &value));
    }
    n
}

/// An enum given by name or by number; anything else names the allowed values.
pub(crate) fn enum_value<E: ProtoEnum>(
    value: Value,
    loc: &Loc,
    errors: &mut Vec<String>,
) -> Option<E> {
    let found = match &value {
        Value::String(s) => E::from_name(s),
        Value::Number(n) => n.as_i64().and_then(E::from_number),
        other => {
            errors.push(type_error(loc, &format!("one of {}", E::names()), other));
            return None;
        }
    };
    if found.is_none() {
        let shown = match &value {
            Value::String(s) => format!("{s:?}"),
            other => other.to_string(),
        };
        let text = format!("has unknown value {shown}; expected one of {}", E::names());
        errors.push(if loc.is_root() {
            format!("unknown value {shown}; expected one of {}", E::names())
        } else {
            loc.say(text)
        });
    }
    found
}

fn list_value<T>(
    value: Value,
    loc: &Loc,
    errors: &mut Vec<String>,
    item: fn(Value, &Loc, &mut Vec<String>) -> Option<T>,
) -> Vec<T> {
    match value {
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .filter_map(|(i, v)| item(v, &loc.index(i), errors))
            .collect(),
        other => {
            errors.push(type_error(loc, "a list", &other));
            Vec::new()
        }
    }
}

/// A struct written to a JSON object through [`Out`].
pub(crate) trait ToJson {
    /// The struct's kept keys (unknown ones and shadows of known ones).
    fn extra(&self) -> &Map<String, Value>;
    /// Writes the known fields, in protocol order.
    fn write(&self, out: &mut Out<'_>);
}

/// The JSON object for `t`: known fields in order, then its unknown keys.
pub(crate) fn to_value<T: ToJson>(t: &T) -> Value {
    let mut out = Out {
        map: Map::new(),
        extra: t.extra(),
        known: Vec::new(),
    };
    t.write(&mut out);
    Value::Object(out.finish())
}

/// Implements `Serialize` for config structs through [`ToJson`].
macro_rules! serialize_to_json {
    ($($t:ty),+ $(,)?) => {$(
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                serde::Serialize::serialize(&$crate::config::json::to_value(self), s)
            }
        }
    )+};
}
pub(crate) use serialize_to_json;

/// A JSON object being written as Backrest writes it (proto3 JSON): a field at its zero
/// value is left out, unless the file had it (a shadow in `extra`), in which case it is
/// written back as it was, in its place. A field that has a value always wins over a
/// shadow, so a changed field is never written twice.
pub(crate) struct Out<'a> {
    map: Map<String, Value>,
    extra: &'a Map<String, Value>,
    /// Known keys in both spellings: their shadows are not written again at the end.
    known: Vec<String>,
}

impl Out<'_> {
    fn put(&mut self, name: &str, value: Option<Value>) {
        let snake = snake_case(name);
        match value {
            Some(v) => {
                self.map.insert(name.to_string(), v);
            }
            None => {
                for key in [name, snake.as_str()] {
                    if let Some(v) = self.extra.get(key) {
                        self.map.insert(key.to_string(), v.clone());
                        break;
                    }
                }
            }
        }
        self.known.push(name.to_string());
        self.known.push(snake);
    }

    fn finish(mut self) -> Map<String, Value> {
        for (key, value) in self.extra {
            if !self.known.iter().any(|k| k == key) && !self.map.contains_key(key) {
                self.map.insert(key.clone(), value.clone());
            }
        }
        self.map
    }

    pub(crate) fn string(&mut self, name: &str, s: &str) {
        self.put(name, (!s.is_empty()).then(|| Value::from(s)));
    }

    pub(crate) fn opt_string(&mut self, name: &str, s: &Option<String>) {
        self.put(name, s.as_deref().map(Value::from));
    }

    pub(crate) fn bool(&mut self, name: &str, b: bool) {
        self.put(name, b.then_some(Value::Bool(true)));
    }

    pub(crate) fn opt_bool(&mut self, name: &str, b: Option<bool>) {
        self.put(name, b.map(Value::Bool));
    }

    pub(crate) fn i32(&mut self, name: &str, n: i32) {
        self.put(name, (n != 0).then(|| Value::from(n)));
    }

    pub(crate) fn opt_i32(&mut self, name: &str, n: Option<i32>) {
        self.put(name, n.map(Value::from));
    }

    /// An int64 written as a number (Backrest's `modno` and `version` are int32).
    pub(crate) fn i64_number(&mut self, name: &str, n: i64) {
        self.put(name, (n != 0).then(|| Value::from(n)));
    }

    pub(crate) fn opt_i64_number(&mut self, name: &str, n: Option<i64>) {
        self.put(name, n.map(Value::from));
    }

    /// An int64 as proto3 JSON writes it: a string.
    pub(crate) fn opt_i64_string(&mut self, name: &str, n: Option<i64>) {
        self.put(name, n.map(|n| Value::String(n.to_string())));
    }

    /// A double as Go's protojson writes it: `10`, not `10.0`, when it is whole.
    pub(crate) fn opt_f64(&mut self, name: &str, n: Option<f64>) {
        let value = n.map(|f| {
            if f.fract() == 0.0 && f.abs() < 9.0e15 {
                Value::from(f as i64)
            } else {
                serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
            }
        });
        self.put(name, value);
    }

    pub(crate) fn strings(&mut self, name: &str, list: &[String]) {
        self.put(
            name,
            (!list.is_empty())
                .then(|| Value::Array(list.iter().map(|s| Value::from(s.as_str())).collect())),
        );
    }

    pub(crate) fn enumeration<E: ProtoEnum>(&mut self, name: &str, e: E) {
        self.put(name, (e.number() != 0).then(|| Value::from(e.name())));
    }

    pub(crate) fn enumerations<E: ProtoEnum>(&mut self, name: &str, list: &[E]) {
        self.put(
            name,
            (!list.is_empty())
                .then(|| Value::Array(list.iter().map(|e| Value::from(e.name())).collect())),
        );
    }

    pub(crate) fn object<T: ToJson>(&mut self, name: &str, t: &Option<T>) {
        self.put(name, t.as_ref().map(to_value));
    }

    pub(crate) fn objects<T: ToJson>(&mut self, name: &str, list: &[T]) {
        self.put(
            name,
            (!list.is_empty()).then(|| Value::Array(list.iter().map(to_value).collect())),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, PartialEq)]
    struct Sample {
        name: String,
        count: i32,
        big: Option<i64>,
        ratio: Option<f64>,
        flag: bool,
        words: Vec<String>,
        extra: Map<String, Value>,
    }

    impl FromJson for Sample {
        fn read(mut o: Obj<'_>) -> Self {
            Sample {
                name: o.string("name"),
                count: o.i32("maxCount"),
                big: o.opt_i64("bigNumber"),
                ratio: o.opt_f64("ratio"),
                flag: o.bool("flag"),
                words: o.strings("words"),
                extra: o.finish(),
            }
        }
    }

    impl ToJson for Sample {
        fn extra(&self) -> &Map<String, Value> {
            &self.extra
        }
        fn write(&self, o: &mut Out<'_>) {
            o.string("name", &self.name);
            o.i32("maxCount", self.count);
            o.opt_i64_string("bigNumber", self.big);
            o.opt_f64("ratio", self.ratio);
            o.bool("flag", self.flag);
            o.strings("words", &self.words);
        }
    }

    fn read(v: Value) -> Result<Sample, Vec<String>> {
        from_value::<Sample>(v, &Loc::root())
    }

    #[test]
    fn snake_case_of_camel_keys() {
        assert_eq!(snake_case("maxFrequencyDays"), "max_frequency_days");
        assert_eq!(snake_case("policyKeepLastN"), "policy_keep_last_n");
        assert_eq!(snake_case("backup_flags"), "backup_flags");
        assert_eq!(snake_case("id"), "id");
    }

    #[test]
    fn reads_camel_snake_strings_and_keeps_the_rest() {
        let s = read(json!({
            "name": "a", "max_count": "7", "bigNumber": "9007199254740993",
            "ratio": "2.5", "flag": true, "words": ["x", "y"], "other": {"k": 1}
        }))
        .unwrap();
        assert_eq!(s.name, "a");
        assert_eq!(s.count, 7);
        assert_eq!(s.big, Some(9_007_199_254_740_993));
        assert_eq!(s.ratio, Some(2.5));
        assert!(s.flag);
        assert_eq!(s.words, vec!["x", "y"]);
        assert_eq!(Value::Object(s.extra), json!({"other": {"k": 1}}));
    }

    #[test]
    fn null_means_not_set_and_is_written_back() {
        let input = json!({"name": null, "bigNumber": null, "words": null});
        let s = read(input.clone()).unwrap();
        assert_eq!(s.name, "");
        assert_eq!(s.big, None);
        assert!(s.words.is_empty());
        assert_eq!(to_value(&s), input);
    }

    #[test]
    fn zero_values_that_were_written_are_written_back_in_place() {
        let text = r#"{"name":"","max_count":"0","bigNumber":"0","flag":false,"words":[],"x":1}"#;
        let s = read(serde_json::from_str(text).unwrap()).unwrap();
        // An explicit-presence field keeps its zero as a value.
        assert_eq!(s.big, Some(0));
        assert_eq!(serde_json::to_string(&to_value(&s)).unwrap(), text);
    }

    #[test]
    fn a_changed_field_wins_over_its_shadow() {
        let mut s = read(json!({"max_count": 0, "flag": false, "u": 2})).unwrap();
        s.count = 5;
        s.flag = true;
        assert_eq!(
            serde_json::to_string(&to_value(&s)).unwrap(),
            r#"{"maxCount":5,"flag":true,"u":2}"#
        );
        s.count = 0;
        assert_eq!(
            serde_json::to_string(&to_value(&s)).unwrap(),
            r#"{"max_count":0,"flag":true,"u":2}"#
        );
    }

    #[test]
    fn collects_every_type_error_with_its_place() {
        let errors = read(json!({
            "name": 5, "maxCount": "many", "bigNumber": 1.5, "flag": "yes",
            "words": ["ok", 3], "ratio": [1]
        }))
        .unwrap_err();
        assert_eq!(
            errors,
            vec![
                "name must be a string, not a number",
                "maxCount must be a whole number, not \"many\"",
                "bigNumber must be a whole number, not a number",
                "ratio must be a number, not a list",
                "flag must be true or false, not a string",
                "words[1] must be a string, not a number",
            ]
        );
    }

    #[test]
    fn int32_out_of_range() {
        let errors = read(json!({"maxCount": 3_000_000_000i64})).unwrap_err();
        assert_eq!(
            errors,
            vec!["maxCount 3000000000 is out of range (a 32-bit number, at most 2147483647)"]
        );
    }

    #[test]
    fn both_spellings_is_an_error() {
        let errors = read(json!({"maxCount": 1, "max_count": 2})).unwrap_err();
        assert_eq!(
            errors,
            vec!["maxCount is given twice, as \"maxCount\" and \"max_count\"; keep one"]
        );
    }

    #[test]
    fn not_an_object_at_the_root() {
        let errors = read(json!([1])).unwrap_err();
        assert_eq!(errors, vec!["the document must be an object, not a list"]);
    }

    #[test]
    fn places_read_well() {
        let plan = Loc::entry("plans", 1, "photos");
        assert_eq!(
            plan.say("repo \"nas2\" is not defined"),
            "plans[1] \"photos\": repo \"nas2\" is not defined"
        );
        assert_eq!(
            plan.field("hooks")
                .index(0)
                .field("actionCommand")
                .say("is empty"),
            "plans[1] \"photos\": hooks[0].actionCommand is empty"
        );
        assert_eq!(Loc::entry("repos", 0, "").say("x"), "repos[0]: x");
        assert_eq!(
            Loc::root()
                .field("auth")
                .field("users")
                .owned_entry(2, "bob")
                .say("x"),
            "auth.users[2] \"bob\": x"
        );
    }
}
