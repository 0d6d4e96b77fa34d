//! The parser: tokens to an AST, checking as it goes that every field, method,
//! function and variable exists, using the types the schema gives (inside `with` and
//! `range` the type of `.` is known too).

use super::lex::{Tok, Token};
use super::{Fail, MAX_DEPTH, Schema, Type, Value, fail};

#[derive(Debug, Clone)]
pub(super) enum Node {
    Text(String, usize),
    Action(Pipe),
    If {
        branches: Vec<(Pipe, Vec<Node>)>,
        otherwise: Vec<Node>,
    },
    With {
        pipe: Pipe,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
    Range {
        pipe: Pipe,
        body: Vec<Node>,
        otherwise: Vec<Node>,
    },
    Break,
    Continue,
}

/// `$x := cmd | cmd ...`
#[derive(Debug, Clone)]
pub(super) struct Pipe {
    pub off: usize,
    pub decl: Vec<String>,
    /// `=` rather than `:=`.
    pub assign: bool,
    pub cmds: Vec<Cmd>,
}

/// One command of a pipeline: an operand, or a function or method and its arguments.
#[derive(Debug, Clone)]
pub(super) struct Cmd {
    pub args: Vec<Arg>,
}

#[derive(Debug, Clone)]
pub(super) struct Arg {
    pub off: usize,
    pub expr: Expr,
}

#[derive(Debug, Clone)]
pub(super) enum Expr {
    Lit(Value),
    Dot,
    Var(String),
    /// A builtin function, by name.
    Func(&'static str),
    /// `.A.B` on a receiver (`.`, a variable, a parenthesised pipeline).
    Chain(Box<Arg>, Vec<String>),
    Sub(Pipe),
}

const MANY: usize = usize::MAX;

/// Go's builtin functions that templates may call, with the least and most arguments
/// each takes.
const BUILTINS: [(&str, usize, usize); 17] = [
    ("and", 1, MANY),
    ("or", 1, MANY),
    ("not", 1, 1),
    ("len", 1, 1),
    ("index", 1, MANY),
    ("print", 0, MANY),
    ("printf", 1, MANY),
    ("println", 0, MANY),
    ("html", 0, MANY),
    ("js", 0, MANY),
    ("urlquery", 0, MANY),
    ("eq", 2, MANY),
    ("ne", 2, 2),
    ("lt", 2, 2),
    ("le", 2, 2),
    ("gt", 2, 2),
    ("ge", 2, 2),
];

const UNSUPPORTED: [&str; 3] = ["define", "template", "block"];

/// Where a list of nodes stopped.
enum Stop {
    Eof,
    End(usize),
    Else(usize),
    ElseIf(usize),
}

struct Parser<'a> {
    toks: Vec<Token>,
    i: usize,
    schema: &'a Schema,
    /// Variables in scope with their static types; `$` first.
    vars: Vec<(String, Type)>,
    depth: usize,
    in_range: usize,
}

pub(super) fn parse(toks: Vec<Token>, schema: &Schema) -> Result<Vec<Node>, Fail> {
    let mut p = Parser {
        toks,
        i: 0,
        schema,
        vars: vec![("$".to_string(), schema.root().clone())],
        depth: 0,
        in_range: 0,
    };
    let root = schema.root().clone();
    match p.list(&root)? {
        (nodes, Stop::Eof) => Ok(nodes),
        (_, Stop::End(off)) => fail(off, "unexpected {{ end }}"),
        (_, Stop::Else(off) | Stop::ElseIf(off)) => fail(off, "unexpected {{ else }}"),
    }
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.toks.get(self.i)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.toks.get(self.i).cloned();
        self.i += 1;
        t
    }

    /// The offset of the next token, or the end of the last one.
    fn here(&self) -> usize {
        self.peek().or(self.toks.last()).map_or(0, |t| t.off)
    }

    fn keyword(&self) -> Option<&str> {
        match self.peek() {
            Some(Token {
                tok: Tok::Ident(w), ..
            }) => Some(w),
            _ => None,
        }
    }

    fn expect_close(&mut self, what: &str) -> Result<(), Fail> {
        match self.next() {
            Some(Token {
                tok: Tok::Close, ..
            }) => Ok(()),
            Some(t) => fail(t.off, format!("unexpected {} in {what}", describe(&t.tok))),
            None => fail(self.here(), "unclosed action"),
        }
    }

    fn list(&mut self, dot: &Type) -> Result<(Vec<Node>, Stop), Fail> {
        let mut nodes = Vec::new();
        while let Some(t) = self.next() {
            let open = t.off;
            match t.tok {
                Tok::Text(s) => nodes.push(Node::Text(s, t.off)),
                Tok::Open => match self.keyword() {
                    Some("end") => {
                        self.i += 1;
                        self.expect_close("{{ end }}")?;
                        return Ok((nodes, Stop::End(open)));
                    }
                    Some("else") => {
                        self.i += 1;
                        if self.keyword() == Some("if") {
                            self.i += 1;
                            return Ok((nodes, Stop::ElseIf(open)));
                        }
                        self.expect_close("{{ else }}")?;
                        return Ok((nodes, Stop::Else(open)));
                    }
                    Some(k @ ("if" | "with" | "range")) => {
                        let k = k.to_string();
                        self.i += 1;
                        self.depth += 1;
                        if self.depth > MAX_DEPTH {
                            return fail(open, "control structures are nested too deeply");
                        }
                        nodes.push(self.control(&k, open, dot)?);
                        self.depth -= 1;
                    }
                    Some(k @ ("break" | "continue")) => {
                        let node = if k == "break" {
                            Node::Break
                        } else {
                            Node::Continue
                        };
                        let k = k.to_string();
                        self.i += 1;
                        if self.in_range == 0 {
                            return fail(open, format!("{{{{ {k} }}}} outside {{{{ range }}}}"));
                        }
                        self.expect_close(&format!("{{{{ {k} }}}}"))?;
                        nodes.push(node);
                    }
                    Some(k) if UNSUPPORTED.contains(&k) => {
                        return fail(open, format!("{{{{ {k} }}}} is not supported"));
                    }
                    _ => {
                        let pipe = self.pipe(1)?;
                        self.expect_close("command")?;
                        self.declare(&pipe, dot)?;
                        nodes.push(Node::Action(pipe));
                    }
                },
                _ => return fail(t.off, format!("unexpected {}", describe(&t.tok))),
            }
        }
        Ok((nodes, Stop::Eof))
    }

    /// Parses `if`, `with` or `range` after its keyword, up to its `{{ end }}`.
    fn control(&mut self, kind: &str, open: usize, dot: &Type) -> Result<Node, Fail> {
        let mark = self.vars.len();
        let max_decl = if kind == "range" { 2 } else { 1 };
        let pipe = self.pipe(max_decl)?;
        self.expect_close(&format!("{{{{ {kind} }}}}"))?;
        if kind == "range" && pipe.assign {
            return fail(pipe.off, "range can only declare variables (:=)");
        }
        let ty = self.check_pipe(&pipe, dot)?;
        let missing_end = |_| Fail {
            off: open,
            msg: format!("missing {{{{ end }}}} for {{{{ {kind} }}}}"),
        };
        let node = match kind {
            "if" => {
                self.bind(&pipe, ty)?;
                let body_mark = self.vars.len();
                let mut branches = Vec::new();
                let (mut body, mut stop) = self.list(dot)?;
                let mut pipe = pipe;
                loop {
                    branches.push((pipe, body));
                    match stop {
                        Stop::ElseIf(_) => {
                            self.vars.truncate(body_mark);
                            pipe = self.pipe(1)?;
                            self.expect_close("{{ else if }}")?;
                            let ty = self.check_pipe(&pipe, dot)?;
                            self.bind(&pipe, ty)?;
                            (body, stop) = self.list(dot)?;
                        }
                        _ => break,
                    }
                }
                let otherwise = self
                    .otherwise(stop, kind, dot, body_mark)
                    .map_err(missing_end)??;
                Node::If {
                    branches,
                    otherwise,
                }
            }
            "with" => {
                self.bind(&pipe, ty.clone())?;
                let body_mark = self.vars.len();
                let (body, stop) = self.list(&ty)?;
                let otherwise = self
                    .otherwise(stop, kind, dot, body_mark)
                    .map_err(missing_end)??;
                Node::With {
                    pipe,
                    body,
                    otherwise,
                }
            }
            _ => {
                let elem = match ty {
                    Type::Any => Type::Any,
                    Type::List(t) => *t,
                    t => return fail(pipe.off, format!("can't range over {}", t.describe())),
                };
                let mut decl_types = vec![elem.clone()];
                if pipe.decl.len() == 2 {
                    decl_types.insert(0, Type::Int);
                }
                for (name, t) in pipe.decl.iter().zip(decl_types) {
                    self.vars.push((name.clone(), t));
                }
                self.in_range += 1;
                let (body, stop) = self.list(&elem)?;
                self.in_range -= 1;
                let otherwise = self
                    .otherwise(stop, kind, dot, mark)
                    .map_err(missing_end)??;
                Node::Range {
                    pipe,
                    body,
                    otherwise,
                }
            }
        };
        self.vars.truncate(mark);
        Ok(node)
    }

    /// After a body that stopped at `stop`: the else branch, if any, up to `{{ end }}`.
    /// The outer `Err(())` means the end is missing.
    #[allow(clippy::type_complexity)]
    fn otherwise(
        &mut self,
        stop: Stop,
        kind: &str,
        dot: &Type,
        mark: usize,
    ) -> Result<Result<Vec<Node>, Fail>, ()> {
        self.vars.truncate(mark);
        match stop {
            Stop::End(_) => Ok(Ok(Vec::new())),
            Stop::Eof => Err(()),
            Stop::ElseIf(off) => Ok(fail(
                off,
                format!("{{{{ else if }}}} inside {{{{ {kind} }}}}"),
            )),
            Stop::Else(_) => match self.list(dot) {
                Err(e) => Ok(Err(e)),
                Ok((nodes, Stop::End(_))) => Ok(Ok(nodes)),
                Ok((_, Stop::Eof)) => Err(()),
                Ok((_, Stop::Else(off) | Stop::ElseIf(off))) => {
                    Ok(fail(off, "unexpected {{ else }} after {{ else }}"))
                }
            },
        }
    }

    /// Declares or assigns the variables of an action's pipeline.
    fn declare(&mut self, pipe: &Pipe, dot: &Type) -> Result<(), Fail> {
        let ty = self.check_pipe(pipe, dot)?;
        self.bind(pipe, ty)
    }

    fn bind(&mut self, pipe: &Pipe, ty: Type) -> Result<(), Fail> {
        let Some(name) = pipe.decl.first() else {
            return Ok(());
        };
        if pipe.assign {
            match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                Some((_, t)) if *t != ty => *t = Type::Any,
                Some(_) => {}
                None => return fail(pipe.off, format!("undefined variable {name}")),
            }
        } else {
            self.vars.push((name.clone(), ty));
        }
        Ok(())
    }

    /// `[$x [, $y] (:= | =)] cmd [| cmd]...`, up to (not including) `}}` or `)`.
    fn pipe(&mut self, max_decl: usize) -> Result<Pipe, Fail> {
        let off = self.here();
        let mut decl = Vec::new();
        let mut assign = false;
        let is_decl = |toks: &[Token], i: usize| {
            matches!(toks.get(i).map(|t| &t.tok), Some(Tok::Var(_)))
                && matches!(
                    toks.get(i + 1).map(|t| &t.tok),
                    Some(Tok::Declare | Tok::Assign | Tok::Comma)
                )
        };
        if max_decl > 0 && is_decl(&self.toks, self.i) {
            loop {
                let Some(Token {
                    tok: Tok::Var(name),
                    off,
                    ..
                }) = self.next()
                else {
                    return fail(self.here(), "expected a variable");
                };
                if name == "$" {
                    return fail(off, "can't declare $");
                }
                decl.push(name);
                match self.next().map(|t| t.tok) {
                    Some(Tok::Comma) if decl.len() < max_decl => continue,
                    Some(Tok::Declare) => break,
                    Some(Tok::Assign) if decl.len() == 1 => {
                        assign = true;
                        break;
                    }
                    _ => return fail(off, "too many declarations"),
                }
            }
        }
        let mut cmds = Vec::new();
        loop {
            cmds.push(self.cmd()?);
            match self.peek().map(|t| &t.tok) {
                Some(Tok::Pipe) => self.i += 1,
                _ => break,
            }
        }
        Ok(Pipe {
            off,
            decl,
            assign,
            cmds,
        })
    }

    fn cmd(&mut self) -> Result<Cmd, Fail> {
        let mut args = Vec::new();
        loop {
            match self.peek() {
                None => return fail(self.here(), "unclosed action"),
                Some(t) if matches!(t.tok, Tok::Pipe | Tok::RParen | Tok::Close) => {
                    if args.is_empty() {
                        return fail(t.off, "missing value for command");
                    }
                    return Ok(Cmd { args });
                }
                Some(_) => args.push(self.operand()?),
            }
        }
    }

    /// A term and the fields chained onto it without space (`$x.A.B`, `(...).A`).
    fn operand(&mut self) -> Result<Arg, Fail> {
        let Some(t) = self.next() else {
            return fail(self.here(), "unclosed action");
        };
        let off = t.off;
        let expr = match t.tok {
            Tok::Dot => Expr::Dot,
            Tok::Field(name) => Expr::Chain(
                Box::new(Arg {
                    off,
                    expr: Expr::Dot,
                }),
                vec![name],
            ),
            Tok::Var(name) => {
                if !self.vars.iter().any(|(n, _)| *n == name) {
                    return fail(off, format!("undefined variable {name}"));
                }
                Expr::Var(name)
            }
            Tok::Str(s) => Expr::Lit(Value::Str(s)),
            Tok::Int(i) => Expr::Lit(Value::Int(i)),
            Tok::Float(f) => Expr::Lit(Value::Float(f)),
            Tok::Bool(b) => Expr::Lit(Value::Bool(b)),
            Tok::Nil => Expr::Lit(Value::Nil),
            Tok::Ident(name) => match BUILTINS.iter().find(|(n, ..)| *n == name) {
                Some((b, ..)) => Expr::Func(b),
                None if is_keyword(&name) => {
                    return fail(off, format!("unexpected {name:?} in command"));
                }
                None => return fail(off, format!("unknown function {name}")),
            },
            Tok::LParen => {
                self.depth += 1;
                if self.depth > MAX_DEPTH {
                    return fail(off, "parentheses are nested too deeply");
                }
                let pipe = self.pipe(0)?;
                self.depth -= 1;
                match self.next() {
                    Some(Token {
                        tok: Tok::RParen, ..
                    }) => Expr::Sub(pipe),
                    _ => return fail(off, "unclosed left parenthesis"),
                }
            }
            tok => return fail(off, format!("unexpected {} in command", describe(&tok))),
        };
        let mut arg = Arg { off, expr };
        while let Some(Token {
            tok: Tok::Field(name),
            spaced: false,
            ..
        }) = self.peek()
        {
            let name = name.clone();
            self.i += 1;
            arg = match arg.expr {
                Expr::Chain(recv, mut names) => {
                    names.push(name);
                    Arg {
                        off,
                        expr: Expr::Chain(recv, names),
                    }
                }
                expr => Arg {
                    off,
                    expr: Expr::Chain(Box::new(Arg { off, expr }), vec![name]),
                },
            };
        }
        Ok(arg)
    }

    /// The static type of a pipeline's value, checking every name in it.
    fn check_pipe(&self, pipe: &Pipe, dot: &Type) -> Result<Type, Fail> {
        let mut ty = Type::Any;
        for (i, cmd) in pipe.cmds.iter().enumerate() {
            ty = self.check_cmd(cmd, dot, i > 0)?;
        }
        Ok(ty)
    }

    fn check_cmd(&self, cmd: &Cmd, dot: &Type, piped: bool) -> Result<Type, Fail> {
        let first = &cmd.args[0];
        let nargs = cmd.args.len() - 1 + usize::from(piped);
        let mut types = Vec::new();
        for a in &cmd.args[1..] {
            types.push(self.check_arg(a, dot, 0)?);
        }
        match &first.expr {
            Expr::Func(b) => self.check_func(b, first.off, nargs, &types),
            Expr::Chain(..) => self.check_arg(first, dot, nargs),
            Expr::Lit(Value::Nil) => fail(first.off, "nil is not a command"),
            _ if nargs > 0 => fail(first.off, "can't give arguments to a non-function"),
            _ => self.check_arg(first, dot, 0),
        }
    }

    fn check_func(&self, b: &str, off: usize, nargs: usize, types: &[Type]) -> Result<Type, Fail> {
        let (min, max) = BUILTINS
            .iter()
            .find(|(n, ..)| *n == b)
            .map_or((0, MANY), |(_, min, max)| (*min, *max));
        if nargs < min || nargs > max {
            let want = match (min, max) {
                (a, b) if a == b => a.to_string(),
                (a, MANY) => format!("at least {a}"),
                (a, b) => format!("{a} to {b}"),
            };
            return fail(
                off,
                format!("wrong number of arguments for {b}: want {want}, got {nargs}"),
            );
        }
        Ok(match b {
            "len" => Type::Int,
            "not" | "eq" | "ne" | "lt" | "le" | "gt" | "ge" => Type::Bool,
            "and" | "or" => Type::Any,
            "index" => match types {
                [Type::List(t), _] => (**t).clone(),
                _ => Type::Any,
            },
            _ => Type::Str,
        })
    }

    /// The type of an operand; `nargs` arguments go to its last method (0 for an
    /// argument).
    fn check_arg(&self, arg: &Arg, dot: &Type, nargs: usize) -> Result<Type, Fail> {
        Ok(match &arg.expr {
            Expr::Dot => dot.clone(),
            Expr::Var(name) => self
                .vars
                .iter()
                .rev()
                .find(|(n, _)| n == name)
                .map_or(Type::Any, |(_, t)| t.clone()),
            Expr::Lit(v) => match v {
                Value::Bool(_) => Type::Bool,
                Value::Int(_) => Type::Int,
                Value::Float(_) => Type::Float,
                Value::Str(_) => Type::Str,
                _ => Type::Any,
            },
            Expr::Func(b) => self.check_func(b, arg.off, 0, &[])?,
            Expr::Sub(pipe) => self.check_pipe(pipe, dot)?,
            Expr::Chain(recv, names) => {
                let mut shown = match &recv.expr {
                    Expr::Dot => String::new(),
                    Expr::Var(v) => v.clone(),
                    Expr::Func(b) => {
                        return fail(arg.off, format!("{b} is a function, it has no fields"));
                    }
                    _ => "(...)".to_string(),
                };
                let mut ty = self.check_arg(recv, dot, 0)?;
                for (i, name) in names.iter().enumerate() {
                    let given = if i + 1 == names.len() { nargs } else { 0 };
                    let owner = if shown.is_empty() {
                        ".".to_string()
                    } else {
                        shown.clone()
                    };
                    shown = format!("{shown}.{name}");
                    ty = match ty {
                        Type::Any => return Ok(Type::Any),
                        Type::Struct(s) => self.member(s, name, &shown, given, arg.off)?,
                        t => {
                            return fail(
                                arg.off,
                                format!("can't use {shown}: {owner} is {}", t.describe()),
                            );
                        }
                    };
                }
                ty
            }
        })
    }

    /// The type of field or method `name` of struct `s`, called with `given` arguments.
    fn member(
        &self,
        s: &str,
        name: &str,
        shown: &str,
        given: usize,
        off: usize,
    ) -> Result<Type, Fail> {
        let Some(st) = self.schema.struct_type(s) else {
            return Ok(Type::Any);
        };
        if let Some((_, t)) = st.fields.iter().find(|(n, _)| *n == name) {
            if given > 0 {
                return fail(off, format!("{shown} is a field, it takes no arguments"));
            }
            return Ok(t.clone());
        }
        match st.methods.iter().find(|m| m.name == name) {
            Some(m) if m.params == given => Ok(m.ret.clone()),
            Some(m) => fail(
                off,
                format!(
                    "wrong number of arguments for {shown}: want {}, got {given}",
                    m.params
                ),
            ),
            None => fail(off, format!("unknown field {shown}")),
        }
    }
}

fn is_keyword(w: &str) -> bool {
    matches!(
        w,
        "if" | "else"
            | "end"
            | "range"
            | "with"
            | "break"
            | "continue"
            | "define"
            | "template"
            | "block"
    )
}

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Text(_) => "text".into(),
        Tok::Open => "\"{{\"".into(),
        Tok::Close => "\"}}\"".into(),
        Tok::Ident(s) => format!("{s:?}"),
        Tok::Field(s) => format!("\".{s}\""),
        Tok::Dot => "\".\"".into(),
        Tok::Var(s) => format!("{s:?}"),
        Tok::Str(s) => format!("string {s:?}"),
        Tok::Int(i) => format!("number {i}"),
        Tok::Float(f) => format!("number {f}"),
        Tok::Bool(b) => format!("{b}"),
        Tok::Nil => "nil".into(),
        Tok::Pipe => "\"|\"".into(),
        Tok::LParen => "\"(\"".into(),
        Tok::RParen => "\")\"".into(),
        Tok::Declare => "\":=\"".into(),
        Tok::Assign => "\"=\"".into(),
        Tok::Comma => "\",\"".into(),
    }
}
