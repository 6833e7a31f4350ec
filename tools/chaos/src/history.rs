//! The files a fault run leaves behind, parsed with every field checked:
//! the history (JSON lines in Jepsen's shape, one event a line) and the
//! replicas' final logs.
//!
//! ```text
//! {"type": "invoke"|"ok"|"fail"|"info", "process": P, "f": "append", "value": V, "offset": O, "time": T}
//! {"type": "ok", "process": P, "f": "read", "from": O, "values": [V, ...], "time": T}
//! {"replicas": {"<member>": [[offset, value], ...], ...}}
//! ```
//!
//! `offset` only on an append's `ok`; a read's `invoke` is optional. `T`
//! is an integer (nanoseconds since the run began); `V` a number or a
//! string, unique per append: an append's invoke and its completion are
//! paired by value. A bad line is an error naming its line and field,
//! never a panic: these files may come from another tool.

use std::fmt;
use std::io::BufRead;

use serde_json::{Map, Value as Json};

/// Longest history line accepted (a read's values make the long ones).
pub const MAX_LINE_BYTES: usize = 16 << 20;

/// An appended value, as its JSON text (`17`, `"a"`), so that numbers and
/// strings compare exactly as written.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Value(pub String);

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What an event says of its operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Invoke,
    /// Completed: it happened.
    Ok,
    /// Definitely did not happen.
    Fail,
    /// Indeterminate (a timeout): it may or may not have happened.
    Info,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// `offset`: the first offset the server answered, on `ok` only.
    Append { value: Value, offset: Option<u64> },
    /// Records read from `from` on: `values[i]` at offset `from + i`.
    Read { from: u64, values: Vec<Value> },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// 1-based line in the history file.
    pub line: usize,
    pub kind: Kind,
    pub process: u64,
    pub op: Op,
    pub time: u64,
}

/// Every replica's committed log after healing: `(member, entries)`,
/// entries as `(offset, value)` in file order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Final {
    pub replicas: Vec<(String, Vec<(u64, Value)>)>,
}

/// Why a file was refused.
#[derive(Debug)]
pub enum ParseError {
    Io(std::io::Error),
    /// A line longer than `MAX_LINE_BYTES`.
    LineTooLong {
        line: usize,
    },
    /// Not JSON, or not the JSON expected.
    Json {
        line: usize,
        error: String,
    },
    /// A field missing or of the wrong kind.
    Field {
        line: usize,
        field: &'static str,
        problem: &'static str,
    },
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::Io(e) => write!(f, "read error: {e}"),
            ParseError::LineTooLong { line } => {
                write!(f, "line {line}: longer than {MAX_LINE_BYTES} bytes")
            }
            ParseError::Json { line, error } => write!(f, "line {line}: not JSON: {error}"),
            ParseError::Field {
                line,
                field,
                problem,
            } => write!(f, "line {line}: field \"{field}\" {problem}"),
        }
    }
}

impl std::error::Error for ParseError {}

impl From<std::io::Error> for ParseError {
    fn from(e: std::io::Error) -> Self {
        ParseError::Io(e)
    }
}

/// Reads a history, one event a line (blank lines skipped).
pub fn read_history(mut r: impl BufRead) -> Result<Vec<Event>, ParseError> {
    let mut events = Vec::new();
    let mut buf = Vec::new();
    let mut line = 0;
    loop {
        buf.clear();
        line += 1;
        // `take` bounds what one line may cost before it is refused.
        let n =
            std::io::Read::take(&mut r, MAX_LINE_BYTES as u64 + 1).read_until(b'\n', &mut buf)?;
        if n == 0 {
            return Ok(events);
        }
        if buf.len() > MAX_LINE_BYTES {
            return Err(ParseError::LineTooLong { line });
        }
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let json: Json = serde_json::from_slice(&buf).map_err(|e| ParseError::Json {
            line,
            error: e.to_string(),
        })?;
        events.push(event(line, &json)?);
    }
}

fn event(line: usize, json: &Json) -> Result<Event, ParseError> {
    let field = |field, problem| ParseError::Field {
        line,
        field,
        problem,
    };
    let obj = json.as_object().ok_or(ParseError::Json {
        line,
        error: "an event must be an object".into(),
    })?;
    let kind = match str_field(obj, "type", line)? {
        "invoke" => Kind::Invoke,
        "ok" => Kind::Ok,
        "fail" => Kind::Fail,
        "info" => Kind::Info,
        _ => return Err(field("type", "is not invoke, ok, fail or info")),
    };
    let process = u64_field(obj, "process", line)?;
    let time = u64_field(obj, "time", line)?;
    let op = match str_field(obj, "f", line)? {
        "append" => {
            let value = value(obj.get("value"), line, "value")?;
            let offset = match obj.get("offset") {
                None | Some(Json::Null) => None,
                Some(_) => Some(u64_field(obj, "offset", line)?),
            };
            if kind == Kind::Ok && offset.is_none() {
                return Err(field("offset", "is missing on an append's ok"));
            }
            Op::Append { value, offset }
        }
        "read" => {
            let from = u64_field(obj, "from", line)?;
            let values = match obj.get("values") {
                Some(Json::Array(a)) => a
                    .iter()
                    .map(|v| value(Some(v), line, "values"))
                    .collect::<Result<Vec<_>, _>>()?,
                None if kind != Kind::Ok => Vec::new(),
                _ => return Err(field("values", "is not an array")),
            };
            Op::Read { from, values }
        }
        _ => return Err(field("f", "is not append or read")),
    };
    Ok(Event {
        line,
        kind,
        process,
        op,
        time,
    })
}

fn str_field<'a>(
    obj: &'a Map<String, Json>,
    name: &'static str,
    line: usize,
) -> Result<&'a str, ParseError> {
    match obj.get(name) {
        Some(Json::String(s)) => Ok(s),
        None => Err(ParseError::Field {
            line,
            field: name,
            problem: "is missing",
        }),
        Some(_) => Err(ParseError::Field {
            line,
            field: name,
            problem: "is not a string",
        }),
    }
}

fn u64_field(obj: &Map<String, Json>, name: &'static str, line: usize) -> Result<u64, ParseError> {
    match obj.get(name) {
        Some(v) => v.as_u64().ok_or(ParseError::Field {
            line,
            field: name,
            problem: "is not an integer in 0..2^64",
        }),
        None => Err(ParseError::Field {
            line,
            field: name,
            problem: "is missing",
        }),
    }
}

fn value(v: Option<&Json>, line: usize, name: &'static str) -> Result<Value, ParseError> {
    match v {
        Some(v @ (Json::Number(_) | Json::String(_))) => Ok(Value(v.to_string())),
        None => Err(ParseError::Field {
            line,
            field: name,
            problem: "is missing",
        }),
        Some(_) => Err(ParseError::Field {
            line,
            field: name,
            problem: "holds a value that is not a number or a string",
        }),
    }
}

/// Reads the final logs: `{"replicas": {"<member>": [[offset, value], ...]}}`.
pub fn read_final(r: impl std::io::Read) -> Result<Final, ParseError> {
    let json: Json = serde_json::from_reader(r).map_err(|e| ParseError::Json {
        line: e.line(),
        error: e.to_string(),
    })?;
    let field = |problem| ParseError::Field {
        line: 1,
        field: "replicas",
        problem,
    };
    let replicas = json
        .get("replicas")
        .and_then(Json::as_object)
        .ok_or(field("is missing or not an object"))?;
    let mut out = Final::default();
    for (member, log) in replicas {
        let log = log
            .as_array()
            .ok_or(field("holds a log that is not an array"))?;
        let mut entries = Vec::with_capacity(log.len());
        for pair in log {
            let (offset, v) = match pair.as_array().map(Vec::as_slice) {
                Some([o, v]) => (o, v),
                _ => return Err(field("holds an entry that is not [offset, value]")),
            };
            let offset = offset
                .as_u64()
                .ok_or(field("holds an offset that is not an integer"))?;
            entries.push((offset, value(Some(v), 1, "replicas")?));
        }
        out.replicas.push((member.clone(), entries));
    }
    Ok(out)
}
