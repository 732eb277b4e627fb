//! The JMESPath that Kyverno policies write inside `{{ }}`: field paths, projections (`[]`, `[*]`,
//! `*`), filters (`[?a == 'b']`), slices, multi-selects, `||`, `&&`, `!`, comparisons, pipes,
//! literals, and the functions policies use (the standard ones and Kyverno's string helpers).
//!
//! Everything here is bounded: the expression's length and nesting are checked when it is read,
//! and evaluation pays every step from a [`Budget`], so a hostile policy costs a fixed amount.

use std::fmt;

use serde_json::{Map, Number, Value};

/// The longest expression read.
pub const MAX_EXPRESSION_LEN: usize = 4096;
/// The deepest nesting of an expression.
pub const MAX_DEPTH: usize = 64;
/// Evaluation steps one expression may take.
pub const MAX_STEPS: usize = 200_000;

/// Why an expression could not be read or evaluated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JmesError {
    /// The expression is malformed (or over the reading budget).
    Syntax(String),
    /// It failed while evaluating (a wrong argument type, a budget spent).
    Eval(String),
    /// It uses a function this engine does not evaluate.
    Unsupported(String),
}

impl fmt::Display for JmesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JmesError::Syntax(m) => write!(f, "JMESPath syntax error: {m}"),
            JmesError::Eval(m) => write!(f, "JMESPath evaluation error: {m}"),
            JmesError::Unsupported(m) => write!(f, "{m}"),
        }
    }
}

type Result<T, E = JmesError> = std::result::Result<T, E>;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Ast {
    Current,
    Field(String),
    Literal(Value),
    Sub(Box<Ast>, Box<Ast>),
    Index(i64),
    Slice(Option<i64>, Option<i64>, Option<i64>),
    /// Each element of the left (a list) through the right, nulls dropped.
    Projection(Box<Ast>, Box<Ast>),
    /// Each value of the left (an object) through the right.
    ValueProjection(Box<Ast>, Box<Ast>),
    /// The left (a list) with the condition, then through the right.
    Filter(Box<Ast>, Box<Ast>, Box<Ast>),
    Flatten(Box<Ast>),
    Or(Box<Ast>, Box<Ast>),
    And(Box<Ast>, Box<Ast>),
    Not(Box<Ast>),
    Compare(Cmp, Box<Ast>, Box<Ast>),
    Pipe(Box<Ast>, Box<Ast>),
    MultiList(Vec<Ast>),
    MultiHash(Vec<(String, Ast)>),
    Function(String, Vec<Ast>),
    ExpRef(Box<Ast>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Quoted(String),
    Literal(Value),
    Number(i64),
    Dot,
    Star,
    LBracket,
    RBracket,
    Flatten,
    FilterStart,
    LBrace,
    RBrace,
    LParen,
    RParen,
    Comma,
    Colon,
    Pipe,
    Or,
    And,
    Not,
    At,
    Amp,
    Cmp(Cmp),
    Eof,
}

impl Tok {
    fn binding_power(&self) -> u8 {
        match self {
            Tok::Pipe => 1,
            Tok::Or => 2,
            Tok::And => 3,
            Tok::Cmp(_) => 5,
            Tok::Flatten => 9,
            Tok::Star => 20,
            Tok::FilterStart => 21,
            Tok::Dot => 40,
            Tok::Not => 45,
            Tok::LBrace => 50,
            Tok::LBracket => 55,
            Tok::LParen => 60,
            _ => 0,
        }
    }
}

fn lex(text: &str) -> Result<Vec<Tok>> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    let syntax = |m: String| JmesError::Syntax(m);
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '.' => {
                tokens.push(Tok::Dot);
                i += 1;
            }
            '*' => {
                tokens.push(Tok::Star);
                i += 1;
            }
            ']' => {
                tokens.push(Tok::RBracket);
                i += 1;
            }
            '{' => {
                tokens.push(Tok::LBrace);
                i += 1;
            }
            '}' => {
                tokens.push(Tok::RBrace);
                i += 1;
            }
            '(' => {
                tokens.push(Tok::LParen);
                i += 1;
            }
            ')' => {
                tokens.push(Tok::RParen);
                i += 1;
            }
            ',' => {
                tokens.push(Tok::Comma);
                i += 1;
            }
            ':' => {
                tokens.push(Tok::Colon);
                i += 1;
            }
            '@' => {
                tokens.push(Tok::At);
                i += 1;
            }
            '[' => match next {
                Some(']') => {
                    tokens.push(Tok::Flatten);
                    i += 2;
                }
                Some('?') => {
                    tokens.push(Tok::FilterStart);
                    i += 2;
                }
                _ => {
                    tokens.push(Tok::LBracket);
                    i += 1;
                }
            },
            '|' => {
                if next == Some('|') {
                    tokens.push(Tok::Or);
                    i += 2;
                } else {
                    tokens.push(Tok::Pipe);
                    i += 1;
                }
            }
            '&' => {
                if next == Some('&') {
                    tokens.push(Tok::And);
                    i += 2;
                } else {
                    tokens.push(Tok::Amp);
                    i += 1;
                }
            }
            '!' => {
                if next == Some('=') {
                    tokens.push(Tok::Cmp(Cmp::Ne));
                    i += 2;
                } else {
                    tokens.push(Tok::Not);
                    i += 1;
                }
            }
            '=' if next == Some('=') => {
                tokens.push(Tok::Cmp(Cmp::Eq));
                i += 2;
            }
            '<' | '>' => {
                let eq = next == Some('=');
                tokens.push(Tok::Cmp(match (c, eq) {
                    ('<', true) => Cmp::Le,
                    ('<', false) => Cmp::Lt,
                    (_, true) => Cmp::Ge,
                    _ => Cmp::Gt,
                }));
                i += if eq { 2 } else { 1 };
            }
            '\'' => {
                let (s, end) = delimited(&chars, i, '\'')?;
                tokens.push(Tok::Literal(Value::String(s.replace("\\'", "'"))));
                i = end;
            }
            '"' => {
                let (s, end) = delimited(&chars, i, '"')?;
                let parsed: String = serde_json::from_str(&format!("\"{s}\""))
                    .map_err(|e| syntax(format!("bad quoted identifier \"{s}\": {e}")))?;
                tokens.push(Tok::Quoted(parsed));
                i = end;
            }
            '`' => {
                let (s, end) = delimited(&chars, i, '`')?;
                let s = s.replace("\\`", "`");
                let value = serde_json::from_str(s.trim())
                    .unwrap_or_else(|_| Value::String(s.trim().to_owned()));
                tokens.push(Tok::Literal(value));
                i = end;
            }
            '-' | '0'..='9' => {
                let start = i;
                i += 1;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
                let s: String = chars[start..i].iter().collect();
                let n = s
                    .parse::<i64>()
                    .map_err(|_| syntax(format!("bad number `{s}`")))?;
                tokens.push(Tok::Number(n));
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let start = i;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                tokens.push(Tok::Ident(chars[start..i].iter().collect()));
            }
            other => return Err(syntax(format!("unexpected character `{other}`"))),
        }
    }
    tokens.push(Tok::Eof);
    Ok(tokens)
}

/// The text between `chars[start]` and the next unescaped `quote`, and the index after it.
fn delimited(chars: &[char], start: usize, quote: char) -> Result<(String, usize)> {
    let mut i = start + 1;
    let mut out = String::new();
    while i < chars.len() {
        let c = chars[i];
        if c == '\\' && i + 1 < chars.len() {
            out.push(c);
            out.push(chars[i + 1]);
            i += 2;
            continue;
        }
        if c == quote {
            return Ok((out, i + 1));
        }
        out.push(c);
        i += 1;
    }
    Err(JmesError::Syntax(format!("unclosed {quote}")))
}

struct Parser {
    tokens: Vec<Tok>,
    at: usize,
    depth: usize,
}

/// Read an expression.
pub fn parse(text: &str) -> Result<Ast> {
    if text.len() > MAX_EXPRESSION_LEN {
        return Err(JmesError::Syntax(format!(
            "the expression is {} bytes long, more than the {MAX_EXPRESSION_LEN} allowed",
            text.len()
        )));
    }
    let mut parser = Parser {
        tokens: lex(text)?,
        at: 0,
        depth: 0,
    };
    let ast = parser.expression(0)?;
    match parser.peek() {
        Tok::Eof => Ok(ast),
        other => Err(JmesError::Syntax(format!(
            "unexpected {other:?} after the expression"
        ))),
    }
}

impl Parser {
    fn peek(&self) -> &Tok {
        self.tokens.get(self.at).unwrap_or(&Tok::Eof)
    }

    fn peek_at(&self, ahead: usize) -> &Tok {
        self.tokens.get(self.at + ahead).unwrap_or(&Tok::Eof)
    }

    fn next(&mut self) -> Tok {
        let tok = self.peek().clone();
        self.at += 1;
        tok
    }

    fn expect(&mut self, want: &Tok) -> Result<()> {
        let got = self.next();
        if &got == want {
            Ok(())
        } else {
            Err(JmesError::Syntax(format!(
                "expected {want:?}, found {got:?}"
            )))
        }
    }

    fn expression(&mut self, rbp: u8) -> Result<Ast> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(JmesError::Syntax(format!(
                "the expression nests deeper than {MAX_DEPTH}"
            )));
        }
        let token = self.next();
        let mut left = self.nud(token)?;
        while rbp < self.peek().binding_power() {
            let token = self.next();
            left = self.led(token, left)?;
        }
        self.depth -= 1;
        Ok(left)
    }

    fn nud(&mut self, token: Tok) -> Result<Ast> {
        match token {
            Tok::Literal(v) => Ok(Ast::Literal(v)),
            Tok::Ident(name) => Ok(Ast::Field(name)),
            Tok::Quoted(name) => {
                if *self.peek() == Tok::LParen {
                    return Err(JmesError::Syntax(
                        "a quoted name cannot be a function".into(),
                    ));
                }
                Ok(Ast::Field(name))
            }
            Tok::Star => {
                let rhs = self.projection_rhs(Tok::Star.binding_power())?;
                Ok(Ast::ValueProjection(Box::new(Ast::Current), Box::new(rhs)))
            }
            Tok::FilterStart => self.filter(Ast::Current),
            Tok::Flatten => {
                let rhs = self.projection_rhs(Tok::Flatten.binding_power())?;
                Ok(Ast::Projection(
                    Box::new(Ast::Flatten(Box::new(Ast::Current))),
                    Box::new(rhs),
                ))
            }
            Tok::LBracket => match self.peek() {
                Tok::Number(_) | Tok::Colon => {
                    let index = self.index_or_slice()?;
                    self.wrap_index(Ast::Current, index)
                }
                Tok::Star if *self.peek_at(1) == Tok::RBracket => {
                    self.at += 2;
                    let rhs = self.projection_rhs(Tok::Star.binding_power())?;
                    Ok(Ast::Projection(Box::new(Ast::Current), Box::new(rhs)))
                }
                _ => self.multi_list(),
            },
            Tok::LBrace => self.multi_hash(),
            Tok::At => Ok(Ast::Current),
            Tok::Not => {
                let inner = self.expression(Tok::Not.binding_power())?;
                Ok(Ast::Not(Box::new(inner)))
            }
            Tok::LParen => {
                let inner = self.expression(0)?;
                self.expect(&Tok::RParen)?;
                Ok(inner)
            }
            Tok::Amp => {
                let inner = self.expression(0)?;
                Ok(Ast::ExpRef(Box::new(inner)))
            }
            other => Err(JmesError::Syntax(format!("unexpected {other:?}"))),
        }
    }

    fn led(&mut self, token: Tok, left: Ast) -> Result<Ast> {
        match token {
            Tok::Dot => {
                if *self.peek() == Tok::Star {
                    self.at += 1;
                    let rhs = self.projection_rhs(Tok::Dot.binding_power())?;
                    return Ok(Ast::ValueProjection(Box::new(left), Box::new(rhs)));
                }
                let rhs = self.dot_rhs(Tok::Dot.binding_power())?;
                Ok(Ast::Sub(Box::new(left), Box::new(rhs)))
            }
            Tok::Pipe => {
                let rhs = self.expression(Tok::Pipe.binding_power())?;
                Ok(Ast::Pipe(Box::new(left), Box::new(rhs)))
            }
            Tok::Or => {
                let rhs = self.expression(Tok::Or.binding_power())?;
                Ok(Ast::Or(Box::new(left), Box::new(rhs)))
            }
            Tok::And => {
                let rhs = self.expression(Tok::And.binding_power())?;
                Ok(Ast::And(Box::new(left), Box::new(rhs)))
            }
            Tok::Cmp(op) => {
                let rhs = self.expression(5)?;
                Ok(Ast::Compare(op, Box::new(left), Box::new(rhs)))
            }
            Tok::LParen => {
                let Ast::Field(name) = left else {
                    return Err(JmesError::Syntax("only a name can be called".into()));
                };
                let mut args = Vec::new();
                while *self.peek() != Tok::RParen {
                    args.push(self.expression(0)?);
                    if *self.peek() == Tok::Comma {
                        self.at += 1;
                    } else if *self.peek() != Tok::RParen {
                        return Err(JmesError::Syntax(format!(
                            "expected `,` or `)` in the arguments of {name}"
                        )));
                    }
                }
                self.at += 1;
                Ok(Ast::Function(name, args))
            }
            Tok::Flatten => {
                let rhs = self.projection_rhs(Tok::Flatten.binding_power())?;
                Ok(Ast::Projection(
                    Box::new(Ast::Flatten(Box::new(left))),
                    Box::new(rhs),
                ))
            }
            Tok::FilterStart => self.filter(left),
            Tok::LBracket => match self.peek() {
                Tok::Number(_) | Tok::Colon => {
                    let index = self.index_or_slice()?;
                    self.wrap_index(left, index)
                }
                Tok::Star if *self.peek_at(1) == Tok::RBracket => {
                    self.at += 2;
                    let rhs = self.projection_rhs(Tok::Star.binding_power())?;
                    Ok(Ast::Projection(Box::new(left), Box::new(rhs)))
                }
                other => Err(JmesError::Syntax(format!("unexpected {other:?} after `[`"))),
            },
            other => Err(JmesError::Syntax(format!("unexpected {other:?}"))),
        }
    }

    /// `[n]` or `[a:b:c]`, the `[` already read.
    fn index_or_slice(&mut self) -> Result<Ast> {
        let mut parts: [Option<i64>; 3] = [None, None, None];
        let mut part = 0;
        loop {
            match self.next() {
                Tok::Number(n) => parts[part] = Some(n),
                Tok::Colon if part < 2 => part += 1,
                Tok::RBracket => break,
                other => return Err(JmesError::Syntax(format!("unexpected {other:?} in `[]`"))),
            }
        }
        if part == 0 {
            parts[0]
                .map(Ast::Index)
                .ok_or_else(|| JmesError::Syntax("an empty index".into()))
        } else {
            if parts[2] == Some(0) {
                return Err(JmesError::Syntax("a slice step cannot be 0".into()));
            }
            Ok(Ast::Slice(parts[0], parts[1], parts[2]))
        }
    }

    fn wrap_index(&mut self, left: Ast, index: Ast) -> Result<Ast> {
        if let Ast::Slice(..) = index {
            let rhs = self.projection_rhs(Tok::Star.binding_power())?;
            Ok(Ast::Projection(
                Box::new(Ast::Sub(Box::new(left), Box::new(index))),
                Box::new(rhs),
            ))
        } else {
            Ok(Ast::Sub(Box::new(left), Box::new(index)))
        }
    }

    fn filter(&mut self, left: Ast) -> Result<Ast> {
        let condition = self.expression(0)?;
        self.expect(&Tok::RBracket)?;
        let rhs = self.projection_rhs(Tok::FilterStart.binding_power())?;
        Ok(Ast::Filter(
            Box::new(left),
            Box::new(condition),
            Box::new(rhs),
        ))
    }

    fn projection_rhs(&mut self, bp: u8) -> Result<Ast> {
        let next = self.peek().clone();
        if next.binding_power() < 10 {
            return Ok(Ast::Current);
        }
        match next {
            Tok::LBracket | Tok::FilterStart | Tok::Flatten => self.expression(bp),
            Tok::Dot => {
                self.at += 1;
                self.dot_rhs(bp)
            }
            other => Err(JmesError::Syntax(format!(
                "unexpected {other:?} after a projection"
            ))),
        }
    }

    fn dot_rhs(&mut self, bp: u8) -> Result<Ast> {
        match self.peek() {
            Tok::Ident(_) | Tok::Quoted(_) | Tok::Star => self.expression(bp),
            Tok::LBracket => {
                self.at += 1;
                self.multi_list()
            }
            Tok::LBrace => {
                self.at += 1;
                self.multi_hash()
            }
            other => Err(JmesError::Syntax(format!("unexpected {other:?} after `.`"))),
        }
    }

    fn multi_list(&mut self) -> Result<Ast> {
        let mut items = Vec::new();
        loop {
            items.push(self.expression(0)?);
            match self.next() {
                Tok::Comma => continue,
                Tok::RBracket => break,
                other => {
                    return Err(JmesError::Syntax(format!(
                        "unexpected {other:?} in `[...]`"
                    )))
                }
            }
        }
        Ok(Ast::MultiList(items))
    }

    fn multi_hash(&mut self) -> Result<Ast> {
        let mut items = Vec::new();
        loop {
            let key = match self.next() {
                Tok::Ident(k) | Tok::Quoted(k) => k,
                other => {
                    return Err(JmesError::Syntax(format!(
                        "unexpected {other:?} in `{{...}}`"
                    )))
                }
            };
            self.expect(&Tok::Colon)?;
            items.push((key, self.expression(0)?));
            match self.next() {
                Tok::Comma => continue,
                Tok::RBrace => break,
                other => {
                    return Err(JmesError::Syntax(format!(
                        "unexpected {other:?} in `{{...}}`"
                    )))
                }
            }
        }
        Ok(Ast::MultiHash(items))
    }
}

/// Steps left for one evaluation.
#[derive(Debug)]
pub struct Budget {
    left: usize,
}

impl Budget {
    pub fn new(steps: usize) -> Budget {
        Budget { left: steps }
    }

    fn spend(&mut self, cost: usize) -> Result<()> {
        match self.left.checked_sub(cost) {
            Some(left) => {
                self.left = left;
                Ok(())
            }
            None => Err(JmesError::Eval(format!(
                "the expression took more than its budget of {MAX_STEPS} steps"
            ))),
        }
    }
}

impl Default for Budget {
    fn default() -> Self {
        Budget::new(MAX_STEPS)
    }
}

/// Evaluate `text` against `data`.
pub fn search(text: &str, data: &Value) -> Result<Value> {
    let ast = parse(text)?;
    evaluate(&ast, data, &mut Budget::default())
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::Number(_) => true,
    }
}

/// Evaluate a parsed expression against `data`.
pub fn evaluate(ast: &Ast, data: &Value, budget: &mut Budget) -> Result<Value> {
    budget.spend(1)?;
    Ok(match ast {
        Ast::Current => data.clone(),
        Ast::Field(name) => data.get(name).cloned().unwrap_or(Value::Null),
        Ast::Literal(v) => v.clone(),
        Ast::Sub(l, r) => {
            let left = evaluate(l, data, budget)?;
            if left.is_null() {
                Value::Null
            } else {
                evaluate(r, &left, budget)?
            }
        }
        Ast::Index(i) => match data {
            Value::Array(items) => {
                let len = items.len() as i64;
                let at = if *i < 0 { len + i } else { *i };
                if at < 0 {
                    Value::Null
                } else {
                    items.get(at as usize).cloned().unwrap_or(Value::Null)
                }
            }
            _ => Value::Null,
        },
        Ast::Slice(start, stop, step) => match data {
            Value::Array(items) => Value::Array(slice(items, *start, *stop, *step)),
            _ => Value::Null,
        },
        Ast::Projection(l, r) => {
            let Value::Array(items) = evaluate(l, data, budget)? else {
                return Ok(Value::Null);
            };
            budget.spend(items.len())?;
            let mut out = Vec::new();
            for item in &items {
                let v = evaluate(r, item, budget)?;
                if !v.is_null() {
                    out.push(v);
                }
            }
            Value::Array(out)
        }
        Ast::ValueProjection(l, r) => {
            let Value::Object(map) = evaluate(l, data, budget)? else {
                return Ok(Value::Null);
            };
            budget.spend(map.len())?;
            let mut out = Vec::new();
            for item in map.values() {
                let v = evaluate(r, item, budget)?;
                if !v.is_null() {
                    out.push(v);
                }
            }
            Value::Array(out)
        }
        Ast::Filter(l, cond, r) => {
            let Value::Array(items) = evaluate(l, data, budget)? else {
                return Ok(Value::Null);
            };
            budget.spend(items.len())?;
            let mut out = Vec::new();
            for item in &items {
                if truthy(&evaluate(cond, item, budget)?) {
                    let v = evaluate(r, item, budget)?;
                    if !v.is_null() {
                        out.push(v);
                    }
                }
            }
            Value::Array(out)
        }
        Ast::Flatten(inner) => {
            let Value::Array(items) = evaluate(inner, data, budget)? else {
                return Ok(Value::Null);
            };
            budget.spend(items.len())?;
            let mut out = Vec::new();
            for item in items {
                match item {
                    Value::Array(nested) => out.extend(nested),
                    other => out.push(other),
                }
            }
            Value::Array(out)
        }
        Ast::Or(l, r) => {
            let left = evaluate(l, data, budget)?;
            if truthy(&left) {
                left
            } else {
                evaluate(r, data, budget)?
            }
        }
        Ast::And(l, r) => {
            let left = evaluate(l, data, budget)?;
            if truthy(&left) {
                evaluate(r, data, budget)?
            } else {
                left
            }
        }
        Ast::Not(inner) => Value::Bool(!truthy(&evaluate(inner, data, budget)?)),
        Ast::Compare(op, l, r) => {
            let left = evaluate(l, data, budget)?;
            let right = evaluate(r, data, budget)?;
            compare(*op, &left, &right)
        }
        Ast::Pipe(l, r) => {
            let left = evaluate(l, data, budget)?;
            evaluate(r, &left, budget)?
        }
        Ast::MultiList(items) => {
            if data.is_null() {
                return Ok(Value::Null);
            }
            let mut out = Vec::new();
            for item in items {
                out.push(evaluate(item, data, budget)?);
            }
            Value::Array(out)
        }
        Ast::MultiHash(items) => {
            if data.is_null() {
                return Ok(Value::Null);
            }
            let mut out = Map::new();
            for (key, item) in items {
                out.insert(key.clone(), evaluate(item, data, budget)?);
            }
            Value::Object(out)
        }
        Ast::Function(name, args) => call(name, args, data, budget)?,
        Ast::ExpRef(_) => {
            return Err(JmesError::Eval(
                "an expression reference (&) is only an argument of a function".into(),
            ))
        }
    })
}

fn slice(items: &[Value], start: Option<i64>, stop: Option<i64>, step: Option<i64>) -> Vec<Value> {
    let len = items.len() as i64;
    let step = step.unwrap_or(1);
    let clamp = |v: i64, low: i64, high: i64| v.clamp(low, high);
    let norm = |v: i64| if v < 0 { v + len } else { v };
    let mut out = Vec::new();
    if step > 0 {
        let mut i = clamp(start.map_or(0, norm), 0, len);
        let end = clamp(stop.map_or(len, norm), 0, len);
        while i < end {
            out.push(items[i as usize].clone());
            i += step;
        }
    } else {
        let mut i = clamp(start.map_or(len - 1, norm), -1, len - 1);
        let end = clamp(stop.map_or(-1, norm), -1, len - 1);
        while i > end {
            out.push(items[i as usize].clone());
            i += step;
        }
    }
    out
}

fn compare(op: Cmp, left: &Value, right: &Value) -> Value {
    match op {
        Cmp::Eq => Value::Bool(json_equal(left, right)),
        Cmp::Ne => Value::Bool(!json_equal(left, right)),
        _ => {
            let ordering = match (left, right) {
                (Value::Number(a), Value::Number(b)) => a
                    .as_f64()
                    .partial_cmp(&b.as_f64())
                    .unwrap_or(std::cmp::Ordering::Equal),
                (Value::String(a), Value::String(b)) => a.cmp(b),
                _ => return Value::Null,
            };
            Value::Bool(match op {
                Cmp::Lt => ordering.is_lt(),
                Cmp::Le => ordering.is_le(),
                Cmp::Gt => ordering.is_gt(),
                _ => ordering.is_ge(),
            })
        }
    }
}

/// JSON equality with numbers compared by value (1 == 1.0).
pub fn json_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

fn number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        Value::Number(Number::from(n as i64))
    } else {
        Number::from_f64(n).map_or(Value::Null, Value::Number)
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A value as text, as Kyverno's `to_string` writes it.
pub fn to_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn call(name: &str, args: &[Ast], data: &Value, budget: &mut Budget) -> Result<Value> {
    let bad = |why: &str| JmesError::Eval(format!("{name}(): {why}"));
    // Functions taking an expression reference first.
    if matches!(name, "sort_by" | "max_by" | "min_by" | "map") {
        let (reference, list) = match (name, args) {
            ("map", [Ast::ExpRef(r), list]) => (r, list),
            (_, [list, Ast::ExpRef(r)]) => (r, list),
            _ => return Err(bad("expects a list and an expression reference")),
        };
        let Value::Array(items) = evaluate(list, data, budget)? else {
            return Err(bad("expects a list"));
        };
        budget.spend(items.len())?;
        let mut keyed = Vec::new();
        for item in items {
            let key = evaluate(reference, &item, budget)?;
            keyed.push((key, item));
        }
        return Ok(match name {
            "map" => Value::Array(keyed.into_iter().map(|(k, _)| k).collect()),
            "sort_by" => {
                keyed.sort_by(|a, b| order(&a.0, &b.0));
                Value::Array(keyed.into_iter().map(|(_, v)| v).collect())
            }
            "max_by" => keyed
                .into_iter()
                .max_by(|a, b| order(&a.0, &b.0))
                .map_or(Value::Null, |(_, v)| v),
            _ => keyed
                .into_iter()
                .min_by(|a, b| order(&a.0, &b.0))
                .map_or(Value::Null, |(_, v)| v),
        });
    }
    let mut values = Vec::with_capacity(args.len());
    for arg in args {
        values.push(evaluate(arg, data, budget)?);
    }
    let arity = |n: usize| -> Result<()> {
        if values.len() == n {
            Ok(())
        } else {
            Err(JmesError::Eval(format!(
                "{name}() takes {n} argument(s), {} given",
                values.len()
            )))
        }
    };
    let text = |i: usize| -> Result<&str> {
        values.get(i).and_then(Value::as_str).ok_or_else(|| {
            JmesError::Eval(format!("{name}(): argument {} must be a string", i + 1))
        })
    };
    let num = |i: usize| -> Result<f64> {
        values.get(i).and_then(Value::as_f64).ok_or_else(|| {
            JmesError::Eval(format!("{name}(): argument {} must be a number", i + 1))
        })
    };
    Ok(match name {
        "length" => {
            arity(1)?;
            match &values[0] {
                Value::String(s) => number(s.chars().count() as f64),
                Value::Array(a) => number(a.len() as f64),
                Value::Object(o) => number(o.len() as f64),
                _ => return Err(bad("expects a string, list or object")),
            }
        }
        "contains" => {
            arity(2)?;
            match &values[0] {
                Value::String(s) => Value::Bool(s.contains(text(1)?)),
                Value::Array(a) => Value::Bool(a.iter().any(|v| json_equal(v, &values[1]))),
                _ => return Err(bad("expects a string or a list")),
            }
        }
        "to_string" => {
            arity(1)?;
            Value::String(to_text(&values[0]))
        }
        "to_number" => {
            arity(1)?;
            match &values[0] {
                Value::Number(_) => values[0].clone(),
                Value::String(s) => s.trim().parse::<f64>().map_or(Value::Null, number),
                _ => Value::Null,
            }
        }
        "to_array" => {
            arity(1)?;
            match &values[0] {
                Value::Array(_) => values[0].clone(),
                other => Value::Array(vec![other.clone()]),
            }
        }
        "type" => {
            arity(1)?;
            Value::String(type_name(&values[0]).into())
        }
        "not_null" => values
            .into_iter()
            .find(|v| !v.is_null())
            .unwrap_or(Value::Null),
        "keys" | "values" => {
            arity(1)?;
            let Value::Object(o) = &values[0] else {
                return Err(bad("expects an object"));
            };
            if name == "keys" {
                Value::Array(o.keys().cloned().map(Value::String).collect())
            } else {
                Value::Array(o.values().cloned().collect())
            }
        }
        "items" => {
            arity(3)?;
            let (Value::Object(o), Some(k), Some(v)) =
                (&values[0], values[1].as_str(), values[2].as_str())
            else {
                return Err(bad("expects an object and two names"));
            };
            Value::Array(
                o.iter()
                    .map(|(key, value)| {
                        let mut m = Map::new();
                        m.insert(k.to_owned(), Value::String(key.clone()));
                        m.insert(v.to_owned(), value.clone());
                        Value::Object(m)
                    })
                    .collect(),
            )
        }
        "starts_with" => {
            arity(2)?;
            Value::Bool(text(0)?.starts_with(text(1)?))
        }
        "ends_with" => {
            arity(2)?;
            Value::Bool(text(0)?.ends_with(text(1)?))
        }
        "to_upper" => {
            arity(1)?;
            Value::String(text(0)?.to_uppercase())
        }
        "to_lower" => {
            arity(1)?;
            Value::String(text(0)?.to_lowercase())
        }
        "equal_fold" => {
            arity(2)?;
            Value::Bool(text(0)?.to_lowercase() == text(1)?.to_lowercase())
        }
        "split" => {
            arity(2)?;
            let (s, sep) = (text(0)?, text(1)?);
            let parts: Vec<Value> = if sep.is_empty() {
                s.chars().map(|c| Value::String(c.to_string())).collect()
            } else {
                s.split(sep).map(|p| Value::String(p.to_owned())).collect()
            };
            budget.spend(parts.len())?;
            Value::Array(parts)
        }
        "join" => {
            arity(2)?;
            let sep = text(0)?;
            let Value::Array(items) = &values[1] else {
                return Err(bad("expects a list of strings"));
            };
            let mut parts = Vec::new();
            for item in items {
                parts.push(
                    item.as_str()
                        .ok_or_else(|| bad("expects a list of strings"))?,
                );
            }
            Value::String(parts.join(sep))
        }
        "replace" | "replace_all" => {
            let (s, old, new) = (text(0)?, text(1)?, text(2)?);
            if name == "replace_all" {
                arity(3)?;
                Value::String(s.replace(old, new))
            } else {
                arity(4)?;
                let n = num(3)?;
                if n < 0.0 {
                    Value::String(s.replace(old, new))
                } else {
                    Value::String(s.replacen(old, new, n as usize))
                }
            }
        }
        "trim" => {
            arity(2)?;
            let cut: Vec<char> = text(1)?.chars().collect();
            Value::String(text(0)?.trim_matches(|c| cut.contains(&c)).to_owned())
        }
        "trim_prefix" => {
            arity(2)?;
            let s = text(0)?;
            Value::String(s.strip_prefix(text(1)?).unwrap_or(s).to_owned())
        }
        "trim_suffix" => {
            arity(2)?;
            let s = text(0)?;
            Value::String(s.strip_suffix(text(1)?).unwrap_or(s).to_owned())
        }
        "truncate" => {
            arity(2)?;
            let n = num(1)?.max(0.0) as usize;
            Value::String(text(0)?.chars().take(n).collect())
        }
        "regex_match" => {
            arity(2)?;
            let subject = to_text(&values[1]);
            Value::Bool(regex(text(0)?)?.is_match(&subject))
        }
        "regex_replace_all" | "regex_replace_all_literal" => {
            arity(3)?;
            let re = regex(text(0)?)?;
            let subject = to_text(&values[1]);
            let with = to_text(&values[2]);
            if name == "regex_replace_all" {
                Value::String(re.replace_all(&subject, with.as_str()).into_owned())
            } else {
                Value::String(
                    re.replace_all(&subject, regex::NoExpand(&with))
                        .into_owned(),
                )
            }
        }
        "pattern_match" => {
            arity(2)?;
            Value::Bool(super::pattern::wildcard_match(
                text(0)?,
                &to_text(&values[1]),
            ))
        }
        "lookup" => {
            arity(2)?;
            match (&values[0], &values[1]) {
                (Value::Object(o), Value::String(k)) => o.get(k).cloned().unwrap_or(Value::Null),
                (Value::Array(a), Value::Number(n)) => n
                    .as_u64()
                    .and_then(|i| a.get(i as usize).cloned())
                    .unwrap_or(Value::Null),
                _ => return Err(bad("expects an object and a key, or a list and an index")),
            }
        }
        "merge" => {
            let mut out = Map::new();
            for v in &values {
                let Value::Object(o) = v else {
                    return Err(bad("expects objects"));
                };
                out.extend(o.clone());
            }
            Value::Object(out)
        }
        "object_from_lists" => {
            arity(2)?;
            let (Value::Array(k), Value::Array(v)) = (&values[0], &values[1]) else {
                return Err(bad("expects two lists"));
            };
            let mut out = Map::new();
            for (i, key) in k.iter().enumerate() {
                out.insert(to_text(key), v.get(i).cloned().unwrap_or(Value::Null));
            }
            Value::Object(out)
        }
        "reverse" => {
            arity(1)?;
            match &values[0] {
                Value::String(s) => Value::String(s.chars().rev().collect()),
                Value::Array(a) => Value::Array(a.iter().rev().cloned().collect()),
                _ => return Err(bad("expects a string or a list")),
            }
        }
        "sort" => {
            arity(1)?;
            let Value::Array(a) = &values[0] else {
                return Err(bad("expects a list"));
            };
            let mut a = a.clone();
            a.sort_by(order);
            Value::Array(a)
        }
        "max" | "min" => {
            arity(1)?;
            let Value::Array(a) = &values[0] else {
                return Err(bad("expects a list"));
            };
            let it = a.iter();
            if name == "max" {
                it.max_by(|a, b| order(a, b))
                    .cloned()
                    .unwrap_or(Value::Null)
            } else {
                it.min_by(|a, b| order(a, b))
                    .cloned()
                    .unwrap_or(Value::Null)
            }
        }
        "sum" | "avg" => {
            arity(1)?;
            let Value::Array(a) = &values[0] else {
                return Err(bad("expects a list of numbers"));
            };
            let mut total = 0.0;
            for v in a {
                total += v.as_f64().ok_or_else(|| bad("expects a list of numbers"))?;
            }
            if name == "avg" {
                if a.is_empty() {
                    Value::Null
                } else {
                    number(total / a.len() as f64)
                }
            } else {
                number(total)
            }
        }
        "abs" => {
            arity(1)?;
            number(num(0)?.abs())
        }
        "ceil" => {
            arity(1)?;
            number(num(0)?.ceil())
        }
        "floor" => {
            arity(1)?;
            number(num(0)?.floor())
        }
        "add" | "subtract" | "multiply" | "divide" | "modulo" => {
            arity(2)?;
            let (a, b) = (num(0)?, num(1)?);
            match name {
                "add" => number(a + b),
                "subtract" => number(a - b),
                "multiply" => number(a * b),
                _ if b == 0.0 => return Err(bad("division by zero")),
                "divide" => number(a / b),
                _ => number(a % b),
            }
        }
        "compare" => {
            arity(2)?;
            number(match text(0)?.cmp(text(1)?) {
                std::cmp::Ordering::Less => -1.0,
                std::cmp::Ordering::Equal => 0.0,
                std::cmp::Ordering::Greater => 1.0,
            })
        }
        "label_match" => {
            arity(2)?;
            let (Value::Object(selector), Value::Object(labels)) = (&values[0], &values[1]) else {
                return Err(bad("expects two objects"));
            };
            Value::Bool(
                selector
                    .iter()
                    .all(|(k, v)| labels.get(k).is_some_and(|l| json_equal(l, v))),
            )
        }
        other => {
            return Err(JmesError::Unsupported(format!(
                "the JMESPath function {other}() is not evaluated here"
            )))
        }
    })
}

fn order(a: &Value, b: &Value) -> std::cmp::Ordering {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(std::cmp::Ordering::Equal),
        (Value::String(x), Value::String(y)) => x.cmp(y),
        _ => std::cmp::Ordering::Equal,
    }
}

/// `pattern`, compiled once for Kyverno (see [`crate::patterns`]).
fn regex(pattern: &str) -> Result<std::sync::Arc<regex::Regex>> {
    crate::patterns::KYVERNO
        .compiled(pattern)
        .map_err(|e| JmesError::Eval(format!("bad regular expression `{pattern}`: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc() -> Value {
        json!({
            "request": {"operation": "CREATE", "object": {"spec": {
                "containers": [
                    {"name": "a", "image": "nginx:1", "ports": [{"hostPort": 80}],
                     "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}},
                    {"name": "b", "image": "redis", "ports": [{"hostPort": 0}]}
                ],
                "initContainers": [{"name": "i", "image": "busybox"}],
                "volumes": [{"name": "v", "hostPath": {"path": "/"}}, {"name": "w", "emptyDir": {}}]
            }}}
        })
    }

    #[test]
    fn expressions_evaluate_as_jmespath_says() {
        let cases: &[(&str, Value)] = &[
            ("request.operation", json!("CREATE")),
            ("request.missing || 'BACKGROUND'", json!("BACKGROUND")),
            ("request.operation || 'BACKGROUND'", json!("CREATE")),
            ("request.object.spec.containers[].name", json!(["a", "b"])),
            ("request.object.spec.containers[*].name", json!(["a", "b"])),
            ("request.object.spec.containers[0].image", json!("nginx:1")),
            ("request.object.spec.containers[-1].name", json!("b")),
            (
                "request.object.spec.[ephemeralContainers, initContainers, containers][].name",
                json!(["i", "a", "b"]),
            ),
            (
                "request.object.spec.[ephemeralContainers, initContainers, containers][].ports[].hostPort",
                json!([80, 0]),
            ),
            (
                "request.object.spec.containers[].securityContext.capabilities.add[]",
                json!(["NET_ADMIN"]),
            ),
            ("request.object.spec.volumes[].keys(@)[]", json!(["hostPath", "name", "emptyDir", "name"])),
            ("request.object.spec.containers[?name == 'b'].image", json!(["redis"])),
            ("request.object.spec.containers[?name != 'b'] | length(@)", json!(1)),
            ("length(request.object.spec.containers)", json!(2)),
            ("!contains(request.operation, 'CRE')", json!(false)),
            ("starts_with(request.operation, 'CR') && ends_with(request.operation, 'TE')", json!(true)),
            ("split('a,b', ',')", json!(["a", "b"])),
            ("join('-', ['a', 'b'])", json!("a-b")),
            ("to_string(`1`)", json!("1")),
            ("truncate('abcdef', `3`)", json!("abc")),
            ("regex_match('^n', 'nginx')", json!(true)),
            ("lookup({a: `1`}, 'a')", json!(1)),
            ("`[1, 2]`[1]", json!(2)),
            ("[`1`, `2`, `3`][1:]", json!([2, 3])),
            ("`{\"a\": {\"b\": 1}}`.*.b", json!([1])),
            ("request.object.spec.containers[].ports[?hostPort > `0`][]", json!([{"hostPort": 80}])),
            ("{n: request.operation}", json!({"n": "CREATE"})),
            ("sort_by(request.object.spec.containers, &name)[0].name", json!("a")),
            ("max(`[3, 1, 2]`)", json!(3)),
            ("request.object.nothing.deeper", Value::Null),
        ];
        for (expr, want) in cases {
            let got = search(expr, &doc());
            assert_eq!(got.as_ref(), Ok(want), "{expr}");
        }
    }

    #[test]
    fn malformed_expressions_are_syntax_errors() {
        for bad in ["a.", "a[", "'open", "a ==", "(a", "a[?b", "[1:2:0]", "a b"] {
            assert!(matches!(parse(bad), Err(JmesError::Syntax(_))), "{bad}");
        }
    }

    #[test]
    fn budgets_bound_length_depth_and_steps() {
        let long = "a".repeat(MAX_EXPRESSION_LEN + 1);
        assert!(matches!(parse(&long), Err(JmesError::Syntax(m)) if m.contains("bytes long")));
        let deep = format!(
            "{}a{}",
            "(".repeat(MAX_DEPTH + 1),
            ")".repeat(MAX_DEPTH + 1)
        );
        assert!(matches!(parse(&deep), Err(JmesError::Syntax(m)) if m.contains("deeper")));
        let wide = json!({"a": vec![json!({"b": vec![1; 1000]}); 1000]});
        let ast = parse("a[].b[].to_string(@)").unwrap_or(Ast::Current);
        let got = evaluate(&ast, &wide, &mut Budget::new(10_000));
        assert!(matches!(got, Err(JmesError::Eval(m)) if m.contains("budget")));
    }

    #[test]
    fn unknown_functions_are_unsupported_not_errors_of_the_policy() {
        assert!(matches!(
            search("time_now_utc()", &json!({})),
            Err(JmesError::Unsupported(_))
        ));
    }
}
