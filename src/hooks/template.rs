//! The template language of hook messages: the part of Go's `text/template` that
//! Backrest's notification templates use, so a user's existing templates render the
//! same way. [`parse`] checks a template against a [`Schema`] (the data's field and
//! method names, with their types) when the config is loaded: a syntax error or an
//! unknown name is a config error naming its line and column. [`Template::render`] then
//! runs it over a [`Value`], with caps on the output size and on range iterations so a
//! template can never run away.
//!
//! The engine is a lexer (`lex`), a parser to an AST that also checks names and types
//! (`parse`), an evaluator (`exec`) and Go's printing rules (`format`). It must not do
//! I/O, call anything outside the schema's methods, or know about hooks: the hook
//! variables live in [`super::vars`].

mod exec;
mod format;
mod lex;
mod parse;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;

use jiff::Timestamp;
use jiff::tz::TimeZone;

pub use format::{go_duration, go_float, go_time, json_float, quote, rfc3339};

/// The largest output a render may produce, and the largest string any function or
/// method may return while rendering.
pub const MAX_OUTPUT: usize = 1 << 20;
/// The most `range` iterations one render may run, over all its loops together.
pub const MAX_RANGE_ITERATIONS: usize = 100_000;
/// The deepest nesting of control structures and parentheses a template may have.
pub const MAX_DEPTH: usize = 50;

/// A template that did not parse or failed to render, with the place in its source
/// (1-based line and column, counted in characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

impl std::error::Error for TemplateError {}

/// An error found at a byte offset of the source; turned into a [`TemplateError`] by
/// [`located`].
#[derive(Debug)]
struct Fail {
    off: usize,
    msg: String,
}

fn fail<T>(off: usize, msg: impl Into<String>) -> Result<T, Fail> {
    Err(Fail {
        off,
        msg: msg.into(),
    })
}

fn located(src: &str, f: Fail) -> TemplateError {
    let mut off = f.off.min(src.len());
    while !src.is_char_boundary(off) {
        off -= 1;
    }
    let before = &src[..off];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    TemplateError {
        line: before.matches('\n').count() + 1,
        column: before[line_start..].chars().count() + 1,
        message: f.msg,
    }
}

/// A value a template works on, with Go's kinds of value in mind.
#[derive(Debug, Clone)]
pub enum Value {
    /// A nil pointer or absent value; prints as `<no value>`.
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Value>),
    Struct(Struct),
    /// A protobuf enum: its name (what it prints as) and its number.
    Enum(&'static str, i64),
    /// An instant and the zone it is shown in (Go's `time.Time`).
    Time(Timestamp, TimeZone),
    /// Nanoseconds (Go's `time.Duration`).
    Duration(i64),
}

/// A struct value: its type name (a struct of the [`Schema`]) and its fields in order.
#[derive(Debug, Clone)]
pub struct Struct {
    pub name: &'static str,
    pub fields: Vec<(&'static str, Value)>,
}

impl Value {
    /// Go's truth: false, 0, nil and empty strings and lists are false.
    pub fn truth(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) | Value::Enum(_, i) | Value::Duration(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Struct(_) | Value::Time(..) => true,
        }
    }

    /// The field `name` of a struct value.
    pub fn field(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Struct(s) => s.fields.iter().find(|(n, _)| *n == name).map(|(_, v)| v),
            _ => None,
        }
    }

    /// What kind of value this is, for error messages ("a string").
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Nil => "nil",
            Value::Bool(_) => "a bool",
            Value::Int(_) => "an int",
            Value::Float(_) => "a float",
            Value::Str(_) => "a string",
            Value::List(_) => "a list",
            Value::Struct(_) => "a struct",
            Value::Enum(..) => "an enum",
            Value::Time(..) => "a time",
            Value::Duration(_) => "a duration",
        }
    }
}

/// A value as an action prints it (Go's `%v`; nil as `<no value>`).
pub fn print_value(v: &Value) -> String {
    format::display(v, "<no value>")
}

/// The static type of a value, as far as the schema knows it.
#[derive(Debug, Clone, PartialEq)]
pub enum Type {
    /// Not known until the template runs; names on it are checked then.
    Any,
    Bool,
    Int,
    Float,
    Str,
    Enum,
    Time,
    Duration,
    List(Box<Type>),
    /// A struct of the schema, by name.
    Struct(&'static str),
}

impl Type {
    fn describe(&self) -> &'static str {
        match self {
            Type::Any | Type::Struct(_) => "a struct",
            Type::Bool => "a bool",
            Type::Int => "an int",
            Type::Float => "a float",
            Type::Str => "a string",
            Type::Enum => "an enum",
            Type::Time => "a time",
            Type::Duration => "a duration",
            Type::List(_) => "a list",
        }
    }
}

/// A method of a struct, called as `.Name arg...`: it gets the struct value and the
/// arguments, and returns a value or an error message.
pub type MethodFn = fn(&Value, &[Value]) -> Result<Value, String>;

/// A method a template may call on a struct of the schema.
#[derive(Clone)]
pub struct Method {
    pub name: &'static str,
    /// How many arguments it takes.
    pub params: usize,
    pub ret: Type,
    pub call: MethodFn,
}

/// A struct type: its fields with their types, and its methods.
#[derive(Clone)]
pub struct StructType {
    pub name: &'static str,
    pub fields: Vec<(&'static str, Type)>,
    pub methods: Vec<Method>,
}

/// The names a template may use: the type of the data it renders and the struct types
/// reachable from it. Cheap to clone.
#[derive(Clone)]
pub struct Schema {
    inner: Arc<SchemaInner>,
}

struct SchemaInner {
    root: Type,
    structs: Vec<StructType>,
}

impl Schema {
    /// A schema whose data is of type `root`; `structs` must hold every struct type
    /// that `root` reaches.
    pub fn new(root: Type, structs: Vec<StructType>) -> Schema {
        Schema {
            inner: Arc::new(SchemaInner { root, structs }),
        }
    }

    pub fn root(&self) -> &Type {
        &self.inner.root
    }

    fn struct_type(&self, name: &str) -> Option<&StructType> {
        self.inner.structs.iter().find(|s| s.name == name)
    }

    fn method(&self, struct_name: &str, method: &str) -> Option<&Method> {
        self.struct_type(struct_name)?
            .methods
            .iter()
            .find(|m| m.name == method)
    }
}

impl fmt::Debug for Schema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Schema({:?})", self.inner.root)
    }
}

/// A parsed, checked template, ready to render.
#[derive(Clone)]
pub struct Template {
    src: String,
    nodes: Vec<parse::Node>,
    schema: Schema,
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Template").field(&self.src).finish()
    }
}

/// Parses `src` and checks every name in it against `schema`.
pub fn parse(src: &str, schema: &Schema) -> Result<Template, TemplateError> {
    let tokens = lex::lex(src).map_err(|f| located(src, f))?;
    let nodes = parse::parse(tokens, schema).map_err(|f| located(src, f))?;
    Ok(Template {
        src: src.to_string(),
        nodes,
        schema: schema.clone(),
    })
}

impl Template {
    /// The template's source text.
    pub fn source(&self) -> &str {
        &self.src
    }

    /// Runs the template over `data`. Fails, naming the place, when a function fails
    /// (e.g. `index` out of range), when the output would pass [`MAX_OUTPUT`] or the
    /// loops [`MAX_RANGE_ITERATIONS`].
    pub fn render(&self, data: &Value) -> Result<String, TemplateError> {
        exec::render(&self.nodes, &self.schema, data).map_err(|f| located(&self.src, f))
    }
}
