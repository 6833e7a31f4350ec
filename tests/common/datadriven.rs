//! A reader for the datadriven scenario format that etcd-raft's test files
//! use, and a runner that compares each case's output with the expected one.
//!
//! Format: a directive line `cmd arg key=val key=(a, b)`, optional input
//! lines, a `----` line, then the expected output up to a blank line. When the
//! output itself holds blank lines it sits between `----`/`----` and
//! `----`/`----`. `#` lines between cases are comments; a directive line
//! ending in `\` continues on the next line.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One argument of a directive: `key`, `key=val` or `key=(v1, v2)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdArg {
    pub key: String,
    pub vals: Vec<String>,
}

/// One case of a scenario file.
#[derive(Debug, Clone)]
pub struct TestCase {
    pub pos: String,
    pub cmd: String,
    pub args: Vec<CmdArg>,
    pub input: String,
    pub expected: String,
}

impl TestCase {
    /// The values of argument `key`, if present.
    pub fn arg(&self, key: &str) -> Option<&[String]> {
        self.args
            .iter()
            .find(|a| a.key == key)
            .map(|a| a.vals.as_slice())
    }

    /// Parses the single value of argument `key`, if present.
    pub fn scan<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>, String> {
        match self.arg(key) {
            None => Ok(None),
            Some([v]) => v
                .parse()
                .map(Some)
                .map_err(|_| format!("{}: argument {key}={v} does not parse", self.pos)),
            Some(vs) => Err(format!(
                "{}: argument {key} wants one value, has {vs:?}",
                self.pos
            )),
        }
    }
}

fn split_args(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut depth = 0i32;
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            '(' if !quoted => {
                depth += 1;
                cur.push(c);
            }
            ')' if !quoted => {
                depth -= 1;
                cur.push(c);
            }
            c if c.is_whitespace() && depth <= 0 && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn unquote(s: &str) -> String {
    let s = s.trim();
    if s.len() >= 2 && s.starts_with('"') && s.ends_with('"') {
        s[1..s.len() - 1].to_string()
    } else {
        s.to_string()
    }
}

fn parse_arg(tok: &str) -> CmdArg {
    match tok.split_once('=') {
        None => CmdArg {
            key: tok.to_string(),
            vals: Vec::new(),
        },
        Some((k, v)) => {
            let vals = if v.starts_with('(') && v.ends_with(')') {
                let inner = &v[1..v.len() - 1];
                if inner.trim().is_empty() {
                    Vec::new()
                } else {
                    inner.split(',').map(unquote).collect()
                }
            } else {
                vec![unquote(v)]
            };
            CmdArg {
                key: k.to_string(),
                vals,
            }
        }
    }
}

/// Parses the text of a scenario file.
pub fn parse(name: &str, text: &str) -> Result<Vec<TestCase>, String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut cases = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            i += 1;
            continue;
        }
        let start = i + 1;
        let mut directive = String::new();
        let mut l = line.trim_end();
        while let Some(stripped) = l.strip_suffix('\\') {
            directive.push_str(stripped);
            directive.push(' ');
            i += 1;
            if i >= lines.len() {
                return Err(format!("{name}:{start}: continuation runs past the end"));
            }
            l = lines[i].trim_end();
        }
        directive.push_str(l);
        i += 1;
        let mut input = Vec::new();
        while i < lines.len() && lines[i] != "----" {
            input.push(lines[i]);
            i += 1;
        }
        if i >= lines.len() {
            return Err(format!("{name}:{start}: no ---- after the directive"));
        }
        i += 1;
        let mut expected = Vec::new();
        if i < lines.len() && lines[i] == "----" {
            // Output that may hold blank lines: up to ----/----.
            i += 1;
            loop {
                if i >= lines.len() {
                    return Err(format!("{name}:{start}: unterminated ----/---- block"));
                }
                if lines[i] == "----" && i + 1 < lines.len() && lines[i + 1] == "----" {
                    i += 2;
                    break;
                }
                expected.push(lines[i]);
                i += 1;
            }
        } else {
            while i < lines.len() && !lines[i].is_empty() {
                expected.push(lines[i]);
                i += 1;
            }
        }
        let mut toks = split_args(&directive).into_iter();
        let cmd = toks.next().unwrap_or_default();
        let args = toks.map(|t| parse_arg(&t)).collect();
        let mut exp = expected.join("\n");
        if !exp.is_empty() {
            exp.push('\n');
        }
        let mut inp = input.join("\n");
        if !inp.is_empty() {
            inp.push('\n');
        }
        cases.push(TestCase {
            pos: format!("{name}:{start}"),
            cmd,
            args,
            input: inp,
            expected: exp,
        });
    }
    Ok(cases)
}

/// Relaxed comparison (see tests/testdata/etcd-raft/README.md): lines that
/// are log messages are dropped, and an output left with nothing in it reads
/// as `ok` (what a command prints when it has nothing to say).
pub fn relaxed(s: &str) -> String {
    let mut out = String::new();
    for line in s.lines() {
        let t = line.trim_start();
        let is_log = ["DEBUG ", "INFO ", "WARN ", "ERROR "]
            .iter()
            .any(|p| t.starts_with(p));
        if !is_log {
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    if out.trim().is_empty() {
        "ok\n".to_string()
    } else {
        out
    }
}

/// A unified diff of two texts, line by line (LCS), with 3 lines of context.
pub fn unified_diff(expected: &str, actual: &str) -> String {
    let a: Vec<&str> = expected.lines().collect();
    let b: Vec<&str> = actual.lines().collect();
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    // ops: (' ' | '-' | '+', line)
    let mut ops: Vec<(char, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            ops.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(('-', a[i]));
            i += 1;
        } else {
            ops.push(('+', b[j]));
            j += 1;
        }
    }
    let mut out = String::from("--- expected\n+++ actual\n");
    let changed: Vec<usize> = (0..ops.len()).filter(|&k| ops[k].0 != ' ').collect();
    let mut k = 0;
    while k < changed.len() {
        let lo = changed[k].saturating_sub(3);
        let mut hi = (changed[k] + 4).min(ops.len());
        while k + 1 < changed.len() && changed[k + 1] < hi + 3 {
            k += 1;
            hi = (changed[k] + 4).min(ops.len());
        }
        let (mut ai, mut bi) = (1, 1);
        for op in &ops[..lo] {
            if op.0 != '+' {
                ai += 1;
            }
            if op.0 != '-' {
                bi += 1;
            }
        }
        let alen = ops[lo..hi].iter().filter(|o| o.0 != '+').count();
        let blen = ops[lo..hi].iter().filter(|o| o.0 != '-').count();
        let _ = writeln!(out, "@@ -{ai},{alen} +{bi},{blen} @@");
        for (c, l) in &ops[lo..hi] {
            let _ = writeln!(out, "{c}{l}");
        }
        k += 1;
    }
    out
}

/// The `*.txt` files of a directory, sorted by name.
pub fn scenario_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read scenario directory {}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "txt"))
        .collect();
    // A directory with no scenario would pass while testing nothing (a
    // mistyped variable, a clone without its testdata): that is a failure.
    assert!(
        !v.is_empty(),
        "no scenario file (*.txt) in {}",
        dir.display()
    );
    v.sort();
    v
}

/// Runs every case of one file through `run` (fresh state per file is the
/// caller's job) and returns the diff of the relaxed outputs, if any differ.
pub fn run_file(path: &Path, mut run: impl FnMut(&TestCase) -> String) -> Result<(), String> {
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{name}: {e}"))?;
    let cases = parse(&name, &text)?;
    let mut expected = String::new();
    let mut actual = String::new();
    for case in &cases {
        let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(case)))
            .unwrap_or_else(|p| {
                let msg = p
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                format!("PANIC: {msg}\n")
            });
        let _ = writeln!(expected, "# {}: {}", case.pos, case.cmd);
        let _ = writeln!(actual, "# {}: {}", case.pos, case.cmd);
        expected.push_str(&relaxed(&case.expected));
        actual.push_str(&relaxed(&got));
    }
    if expected == actual {
        Ok(())
    } else {
        Err(unified_diff(&expected, &actual))
    }
}

/// Runs every file of `dir`, printing each by name and a diff for each
/// failure, then the line `<label>: N passed, M failed`. `make` gives the
/// per-file runner (so every file starts from fresh state).
pub fn run_dir<R: FnMut(&TestCase) -> String>(
    label: &str,
    dir: &Path,
    mut make: impl FnMut() -> R,
) -> (usize, usize) {
    let (mut passed, mut failed) = (0, 0);
    for path in scenario_files(dir) {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        match run_file(&path, make()) {
            Ok(()) => {
                passed += 1;
                println!("{label}: PASS {name}");
            }
            Err(diff) => {
                failed += 1;
                println!("{label}: FAIL {name}\n{diff}");
            }
        }
    }
    println!("{label}: {passed} passed, {failed} failed");
    (passed, failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[should_panic(expected = "no scenario file")]
    fn an_empty_scenario_directory_fails() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.md"), "not a scenario").unwrap();
        scenario_files(dir.path());
    }

    #[test]
    fn parses_args_lists_and_inputs() {
        let text = "# c\ncommitted cfg=(1,2,3) cfgj=zero idx=(13, 100)\n----\nx\ny\n\nsimple\nv1 l2\n----\nok\n";
        let cases = parse("t", text).unwrap();
        assert_eq!(cases.len(), 2);
        assert_eq!(cases[0].cmd, "committed");
        assert_eq!(cases[0].arg("idx").unwrap(), &["13", "100"]);
        assert_eq!(cases[0].arg("cfgj").unwrap(), &["zero"]);
        assert_eq!(cases[0].expected, "x\ny\n");
        assert_eq!(cases[1].input, "v1 l2\n");
        assert_eq!(cases[1].pos, "t:7");
    }

    #[test]
    fn double_separator_keeps_blank_lines() {
        let text = "cmd a\n----\n----\nx\n\ny\n----\n----\n\nnext\n----\nok\n";
        let cases = parse("t", text).unwrap();
        assert_eq!(cases[0].expected, "x\n\ny\n");
        assert_eq!(cases[1].cmd, "next");
    }

    #[test]
    fn relaxed_drops_logs_and_empty_means_ok() {
        assert_eq!(relaxed("INFO a\n  DEBUG b\n"), "ok\n");
        assert_eq!(relaxed("> 1 x\n  INFO y\n  z\n"), "> 1 x\n  z\n");
    }

    #[test]
    fn diff_shows_changed_lines() {
        let d = unified_diff("a\nb\nc\n", "a\nB\nc\n");
        assert!(d.contains("-b\n+B\n"), "{d}");
    }
}
