//! The evaluator: walks the AST over a value, with Go's semantics for truth, fields,
//! methods, variables and the builtin functions, under the output and loop caps.

use std::borrow::Cow;
use std::cmp::Ordering;

use super::format;
use super::parse::{Arg, Cmd, Expr, Node, Pipe};
use super::{Fail, MAX_OUTPUT, MAX_RANGE_ITERATIONS, Schema, Value, fail};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Normal,
    Break,
    Continue,
}

struct Exec<'t> {
    schema: &'t Schema,
    out: String,
    vars: Vec<(String, Value)>,
    iterations: usize,
}

pub(super) fn render(nodes: &[Node], schema: &Schema, data: &Value) -> Result<String, Fail> {
    let mut e = Exec {
        schema,
        out: String::new(),
        vars: vec![("$".to_string(), data.clone())],
        iterations: 0,
    };
    e.run(nodes, data)?;
    Ok(e.out)
}

fn too_long(what: &str) -> String {
    format!("{what} is longer than {} MiB", MAX_OUTPUT >> 20)
}

impl Exec<'_> {
    fn write(&mut self, s: &str, off: usize) -> Result<(), Fail> {
        if self.out.len() + s.len() > MAX_OUTPUT {
            return fail(off, too_long("the output"));
        }
        self.out.push_str(s);
        Ok(())
    }

    fn run(&mut self, nodes: &[Node], dot: &Value) -> Result<Flow, Fail> {
        for node in nodes {
            let mark = self.vars.len();
            let flow = match node {
                Node::Text(s, off) => {
                    self.write(s, *off)?;
                    continue;
                }
                Node::Action(pipe) => {
                    let v = self.pipe(pipe, dot)?;
                    if pipe.decl.is_empty() {
                        let s = format::display(&v, "<no value>");
                        self.write(&s, pipe.off)?;
                    }
                    continue;
                }
                Node::Break => return Ok(Flow::Break),
                Node::Continue => return Ok(Flow::Continue),
                Node::If {
                    branches,
                    otherwise,
                } => {
                    let mut taken = None;
                    for (pipe, body) in branches {
                        if self.pipe(pipe, dot)?.truth() {
                            taken = Some(body);
                            break;
                        }
                    }
                    self.run(taken.unwrap_or(otherwise), dot)?
                }
                Node::With {
                    pipe,
                    body,
                    otherwise,
                } => {
                    let v = self.pipe(pipe, dot)?;
                    if v.truth() {
                        self.run(body, &v)?
                    } else {
                        self.run(otherwise, dot)?
                    }
                }
                Node::Range {
                    pipe,
                    body,
                    otherwise,
                } => self.range(pipe, body, otherwise, dot)?,
            };
            self.vars.truncate(mark);
            if flow != Flow::Normal {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    fn range(
        &mut self,
        pipe: &Pipe,
        body: &[Node],
        otherwise: &[Node],
        dot: &Value,
    ) -> Result<Flow, Fail> {
        let items = match self.cmds(pipe, dot)? {
            Value::List(items) => items,
            Value::Nil => Vec::new(),
            v => return fail(pipe.off, format!("can't range over {}", v.kind())),
        };
        if items.is_empty() {
            return self.run(otherwise, dot);
        }
        for (i, item) in items.into_iter().enumerate() {
            self.iterations += 1;
            if self.iterations > MAX_RANGE_ITERATIONS {
                return fail(
                    pipe.off,
                    format!("more than {MAX_RANGE_ITERATIONS} range iterations"),
                );
            }
            let mark = self.vars.len();
            if let [index, _] = &pipe.decl[..] {
                self.vars.push((index.clone(), Value::Int(i as i64)));
            }
            if let Some(name) = pipe.decl.last() {
                self.vars.push((name.clone(), item.clone()));
            }
            let flow = self.run(body, &item)?;
            self.vars.truncate(mark);
            if flow == Flow::Break {
                break;
            }
        }
        Ok(Flow::Normal)
    }

    /// Runs a pipeline and declares or assigns its variable.
    fn pipe(&mut self, pipe: &Pipe, dot: &Value) -> Result<Value, Fail> {
        let v = self.cmds(pipe, dot)?;
        if let Some(name) = pipe.decl.first() {
            match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                Some((_, slot)) if pipe.assign => *slot = v.clone(),
                _ => self.vars.push((name.clone(), v.clone())),
            }
        }
        Ok(v)
    }

    fn cmds(&mut self, pipe: &Pipe, dot: &Value) -> Result<Value, Fail> {
        let mut last = None;
        for cmd in &pipe.cmds {
            last = Some(self.cmd(cmd, dot, last.take())?);
        }
        Ok(last.unwrap_or(Value::Nil))
    }

    fn cmd(&mut self, cmd: &Cmd, dot: &Value, piped: Option<Value>) -> Result<Value, Fail> {
        let first = &cmd.args[0];
        match &first.expr {
            Expr::Func(b) => self.call(b, first.off, &cmd.args[1..], piped, dot),
            Expr::Chain(recv, names) => {
                let mut args = Vec::with_capacity(cmd.args.len());
                for a in &cmd.args[1..] {
                    args.push(self.arg(a, dot)?);
                }
                args.extend(piped);
                self.chain(recv, names, args, dot, first.off)
            }
            _ => self.arg(first, dot),
        }
    }

    fn arg(&mut self, arg: &Arg, dot: &Value) -> Result<Value, Fail> {
        match &arg.expr {
            Expr::Lit(v) => Ok(v.clone()),
            Expr::Dot => Ok(dot.clone()),
            Expr::Var(name) => Ok(self.var(name).clone()),
            Expr::Func(b) => self.call(b, arg.off, &[], None, dot),
            Expr::Sub(pipe) => self.cmds(pipe, dot),
            Expr::Chain(recv, names) => self.chain(recv, names, Vec::new(), dot, arg.off),
        }
    }

    fn var(&self, name: &str) -> &Value {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map_or(&Value::Nil, |(_, v)| v)
    }

    /// Follows `.A.B...` from the receiver; the last name gets `args` if a method.
    fn chain(
        &mut self,
        recv: &Arg,
        names: &[String],
        args: Vec<Value>,
        dot: &Value,
        off: usize,
    ) -> Result<Value, Fail> {
        let schema = self.schema;
        let mut v: Cow<'_, Value> = match &recv.expr {
            Expr::Dot => Cow::Borrowed(dot),
            Expr::Var(name) => Cow::Borrowed(self.var(name)),
            _ => Cow::Owned(self.arg(recv, dot)?),
        };
        for (i, name) in names.iter().enumerate() {
            let given: &[Value] = if i + 1 == names.len() { &args } else { &[] };
            v = step(schema, v, name, given, off)?;
        }
        Ok(v.into_owned())
    }

    fn call(
        &mut self,
        b: &str,
        off: usize,
        args: &[Arg],
        piped: Option<Value>,
        dot: &Value,
    ) -> Result<Value, Fail> {
        if matches!(b, "and" | "or") {
            let mut last = Value::Nil;
            for a in args {
                last = self.arg(a, dot)?;
                if last.truth() == (b == "or") {
                    return Ok(last);
                }
            }
            return Ok(piped.unwrap_or(last));
        }
        let mut vals = Vec::with_capacity(args.len() + 1);
        for a in args {
            vals.push(self.arg(a, dot)?);
        }
        vals.extend(piped);
        let r = builtin(b, vals).map_err(|e| Fail {
            off,
            msg: format!("error calling {b}: {e}"),
        })?;
        checked(r, b, off)
    }
}

/// Field or method `name` of `v`; a method gets `args`. A field of nil is nil.
fn step<'v>(
    schema: &Schema,
    v: Cow<'v, Value>,
    name: &str,
    args: &[Value],
    off: usize,
) -> Result<Cow<'v, Value>, Fail> {
    if v.field(name).is_some() && !args.is_empty() {
        return fail(off, format!("{name} is a field, it takes no arguments"));
    }
    if let Cow::Borrowed(b) = &v {
        let b: &'v Value = b;
        if let Some(f) = b.field(name) {
            return Ok(Cow::Borrowed(f));
        }
    }
    match &*v {
        Value::Nil => Ok(Cow::Owned(Value::Nil)),
        Value::Struct(s) => {
            if let Some(f) = v.field(name) {
                return Ok(Cow::Owned(f.clone()));
            }
            let Some(m) = schema.method(s.name, name) else {
                return fail(off, format!("{} has no field or method {name}", s.name));
            };
            if args.len() != m.params {
                return fail(
                    off,
                    format!(
                        "wrong number of arguments for {name}: want {}, got {}",
                        m.params,
                        args.len()
                    ),
                );
            }
            let r = (m.call)(&v, args).map_err(|e| Fail {
                off,
                msg: format!("{name}: {e}"),
            })?;
            Ok(Cow::Owned(checked(r, name, off)?))
        }
        other => fail(off, format!("can't get field {name} of {}", other.kind())),
    }
}

/// A function's result, refused when it is a string past the output cap.
fn checked(v: Value, name: &str, off: usize) -> Result<Value, Fail> {
    match &v {
        Value::Str(s) if s.len() > MAX_OUTPUT => {
            fail(off, too_long(&format!("the result of {name}")))
        }
        _ => Ok(v),
    }
}

fn builtin(b: &str, vals: Vec<Value>) -> Result<Value, String> {
    let text = |vals: &[Value]| match vals {
        [Value::Str(s)] => s.clone(),
        _ => format::sprint(vals),
    };
    Ok(match b {
        "not" => Value::Bool(!vals[0].truth()),
        "len" => Value::Int(match &vals[0] {
            Value::Str(s) => s.len() as i64,
            Value::List(l) => l.len() as i64,
            v => return Err(format!("len of {}", v.kind())),
        }),
        "index" => {
            let mut v = vals[0].clone();
            for i in &vals[1..] {
                let Value::Int(i) = *i else {
                    return Err(format!("cannot index with {}", i.kind()));
                };
                v = match &v {
                    Value::List(l) => usize::try_from(i).ok().and_then(|i| l.get(i)).cloned(),
                    Value::Str(s) => usize::try_from(i)
                        .ok()
                        .and_then(|i| s.as_bytes().get(i))
                        .map(|b| Value::Int(i64::from(*b))),
                    v => return Err(format!("can't index {}", v.kind())),
                }
                .ok_or_else(|| format!("index out of range: {i}"))?;
            }
            v
        }
        "print" => Value::Str(format::sprint(&vals)),
        "println" => Value::Str(format::sprintln(&vals)),
        "printf" => match &vals[0] {
            Value::Str(f) => Value::Str(format::sprintf(f, &vals[1..])),
            v => return Err(format!("the format must be a string, not {}", v.kind())),
        },
        "html" => Value::Str(format::html_escape(&text(&vals))),
        "js" => Value::Str(format::js_escape(&text(&vals))),
        "urlquery" => Value::Str(format::query_escape(&text(&vals))),
        "eq" => {
            for other in &vals[1..] {
                if equal(&vals[0], other)? {
                    return Ok(Value::Bool(true));
                }
            }
            Value::Bool(false)
        }
        "ne" => Value::Bool(!equal(&vals[0], &vals[1])?),
        "lt" => Value::Bool(order(&vals[0], &vals[1])? == Ordering::Less),
        "le" => Value::Bool(order(&vals[0], &vals[1])? != Ordering::Greater),
        "gt" => Value::Bool(order(&vals[0], &vals[1])? == Ordering::Greater),
        "ge" => Value::Bool(order(&vals[0], &vals[1])? != Ordering::Less),
        _ => return Err(format!("unknown function {b}")),
    })
}

/// A number for comparisons: ints, enums (their number) and durations (nanoseconds).
fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) | Value::Enum(_, i) | Value::Duration(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    }
}

fn equal(a: &Value, b: &Value) -> Result<bool, String> {
    Ok(match (a, b) {
        (Value::Nil, Value::Nil) => true,
        (Value::Nil, _) | (_, Value::Nil) => false,
        (Value::Bool(x), Value::Bool(y)) => x == y,
        (Value::Str(x), Value::Str(y)) => x == y,
        (Value::Enum(name, _), Value::Str(s)) | (Value::Str(s), Value::Enum(name, _)) => name == s,
        (Value::Int(x), Value::Int(y)) => x == y,
        (Value::Time(x, _), Value::Time(y, _)) => x == y,
        _ => match (number(a), number(b)) {
            (Some(x), Some(y)) => x == y,
            _ => return Err(incompatible(a, b)),
        },
    })
}

fn order(a: &Value, b: &Value) -> Result<Ordering, String> {
    match (a, b) {
        (Value::Str(x), Value::Str(y)) => Ok(x.cmp(y)),
        (Value::Int(x), Value::Int(y)) => Ok(x.cmp(y)),
        (Value::Time(x, _), Value::Time(y, _)) => Ok(x.cmp(y)),
        _ => match (number(a), number(b)) {
            (Some(x), Some(y)) => x
                .partial_cmp(&y)
                .ok_or_else(|| "can't order NaN".to_string()),
            _ => Err(incompatible(a, b)),
        },
    }
}

fn incompatible(a: &Value, b: &Value) -> String {
    format!(
        "incompatible types for comparison: {} and {}",
        a.kind(),
        b.kind()
    )
}
