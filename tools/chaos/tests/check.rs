//! The checker on doctored histories: a clean run passes, and each kind of
//! anomaly is reported with the values and offsets involved.

use std::io::Cursor;
use std::process::Command;

use corelog_chaos::check::{Anomaly, check};
use corelog_chaos::history::{Event, Final, ParseError, Value, read_final, read_history};

/// A clean run: 3 processes append 30 values, one at a time each,
/// interleaved, acknowledged in offset order; 3 replicas agree; a read.
fn clean() -> (String, String) {
    let mut lines = Vec::new();
    let mut time = 0;
    let mut offset = 0;
    let mut log = Vec::new();
    for round in 0..10 {
        for p in 0..3u64 {
            let v = round * 3 + p + 100;
            time += 10;
            lines.push(format!(
                r#"{{"type":"invoke","process":{p},"f":"append","value":{v},"time":{time}}}"#
            ));
            time += 10;
            lines.push(format!(
                r#"{{"type":"ok","process":{p},"f":"append","value":{v},"offset":{offset},"time":{time}}}"#
            ));
            log.push(format!("[{offset},{v}]"));
            offset += 1;
        }
    }
    lines.push(format!(
        r#"{{"type":"invoke","process":9,"f":"read","from":5,"time":{}}}"#,
        time + 1
    ));
    lines.push(format!(
        r#"{{"type":"ok","process":9,"f":"read","from":5,"values":[105,106,107],"time":{}}}"#,
        time + 2
    ));
    let log = log.join(",");
    let fin = format!(r#"{{"replicas":{{"1":[{log}],"2":[{log}],"3":[{log}]}}}}"#);
    (lines.join("\n") + "\n", fin)
}

fn parse(history: &str, fin: &str) -> (Vec<Event>, Final) {
    (
        read_history(Cursor::new(history.as_bytes())).unwrap(),
        read_final(Cursor::new(fin.as_bytes())).unwrap(),
    )
}

fn anomalies(history: &str, fin: &str) -> Vec<Anomaly> {
    let (h, f) = parse(history, fin);
    check(&h, &f).anomalies
}

fn v(n: u64) -> Value {
    Value(n.to_string())
}

#[test]
fn a_clean_run_has_no_anomaly_and_says_so() {
    let (h, f) = clean();
    let (h, f) = parse(&h, &f);
    let r = check(&h, &f);
    assert!(r.is_valid(), "{:?}", r.anomalies);
    assert_eq!(r.ops, 31);
    assert_eq!(r.acked, 30);
    assert!(
        r.summary()
            .starts_with("chaos: 31 ops, 30 acked, 0 lost, 0 duplicated, 0 reordered, 0 divergent"),
        "{}",
        r.summary()
    );
}

#[test]
fn an_acknowledged_value_missing_from_every_replica_is_lost() {
    let (h, f) = clean();
    let f = f.replace(",[29,129]", "");
    assert_eq!(
        anomalies(&h, &f),
        vec![Anomaly::Lost {
            value: v(129),
            acked_offset: 29
        }]
    );
}

#[test]
fn a_value_at_two_offsets_is_duplicated() {
    let (h, f) = clean();
    let f = f.replace("[29,129]", "[29,129],[30,104]");
    assert_eq!(
        anomalies(&h, &f),
        vec![Anomaly::Duplicated {
            value: v(104),
            offsets: vec![4, 30]
        }]
    );
}

#[test]
fn an_append_acknowledged_before_another_was_invoked_must_lie_before_it() {
    let (h, f) = clean();
    // 110 (offset 10) was acknowledged before 111 was invoked; swap them.
    let f = f.replace("[10,110],[11,111]", "[10,111],[11,110]");
    let a = anomalies(&h, &f);
    assert!(
        a.contains(&Anomaly::Reordered {
            earlier: v(110),
            earlier_offset: 11,
            later: v(111),
            later_offset: 10
        }),
        "{a:?}"
    );
    // The server's answers no longer match the log either.
    assert!(a.contains(&Anomaly::Misplaced {
        value: v(110),
        acked_offset: 10,
        found_offset: 11
    }));
}

#[test]
fn concurrent_appends_may_commit_in_either_order() {
    // 200 and 201 overlap in time: either order is linearizable.
    let h = r#"{"type":"invoke","process":0,"f":"append","value":200,"time":1}
{"type":"invoke","process":1,"f":"append","value":201,"time":2}
{"type":"ok","process":1,"f":"append","value":201,"offset":0,"time":3}
{"type":"ok","process":0,"f":"append","value":200,"offset":1,"time":4}
"#;
    let f = r#"{"replicas":{"a":[[0,201],[1,200]]}}"#;
    assert_eq!(anomalies(h, f), vec![]);
}

#[test]
fn replicas_that_disagree_at_an_offset_or_skip_one_are_divergent() {
    let (h, f) = clean();
    let one = f.find(r#""2":"#).unwrap();
    let mut doctored = f.clone();
    doctored.replace_range(one.., &f[one..].replacen("[7,107]", "[7,999]", 1));
    let a = anomalies(&h, &doctored);
    assert!(
        a.contains(&Anomaly::Divergent {
            offset: 7,
            replica: "2".into(),
            value: v(999),
            other_replica: "1".into(),
            other_value: v(107)
        }),
        "{a:?}"
    );
    let mut holed = f.clone();
    holed.replace_range(one.., &f[one..].replacen("[7,107],", "", 1));
    assert_eq!(
        anomalies(&h, &holed),
        vec![Anomaly::Hole {
            replica: "2".into(),
            after: 6,
            next: 8
        }]
    );
}

#[test]
fn replicas_starting_late_after_retention_or_ending_early_agree() {
    let (h, _) = clean();
    // Replica 2 truncated below 12 (reads below it are not checkable);
    // replica 3 lags at 20.
    let log: Vec<String> = (0..30).map(|o| format!("[{o},{}]", o + 100)).collect();
    let f2 = format!(
        r#"{{"replicas":{{"1":[{}],"2":[{}],"3":[{}]}}}}"#,
        log.join(","),
        log[12..].join(","),
        log[..20].join(",")
    );
    assert_eq!(anomalies(&h, &f2), vec![]);
}

#[test]
fn a_definitely_failed_append_in_the_log_and_a_value_nobody_appended_are_reported() {
    let (h, f) = clean();
    let h = h.replace(
        r#"{"type":"ok","process":1,"f":"append","value":104,"offset":4,"#,
        r#"{"type":"fail","process":1,"f":"append","value":104,"#,
    );
    let f = f.replace("[29,129]", "[29,129],[30,777]");
    assert_eq!(
        anomalies(&h, &f),
        vec![
            Anomaly::FailedPresent {
                value: v(104),
                offset: 4
            },
            Anomaly::Phantom {
                value: v(777),
                offset: 30
            }
        ]
    );
}

#[test]
fn an_indeterminate_append_may_be_present_or_absent() {
    let (h, f) = clean();
    let h = h.replace(
        r#"{"type":"ok","process":2,"f":"append","value":129,"offset":29,"#,
        r#"{"type":"info","process":2,"f":"append","value":129,"#,
    );
    assert_eq!(anomalies(&h, &f), vec![]);
    assert_eq!(anomalies(&h, &f.replace(",[29,129]", "")), vec![]);
}

#[test]
fn a_read_must_return_the_log_at_its_offsets() {
    let (h, f) = clean();
    let wrong = h.replace("[105,106,107]", "[105,107,106]");
    let a = anomalies(&wrong, &f);
    assert_eq!(a.len(), 2, "{a:?}");
    assert!(matches!(
        &a[0],
        Anomaly::BadRead { offset: 6, read, expected: Some(e), .. } if *read == v(107) && *e == v(106)
    ));
    // Past the end of every replica: read something never committed.
    let past = h.replace(
        r#""from":5,"values":[105,106,107]"#,
        r#""from":29,"values":[129,130]"#,
    );
    assert_eq!(
        anomalies(&past, &f),
        vec![Anomaly::BadRead {
            line: 62,
            process: 9,
            offset: 30,
            read: v(130),
            expected: None
        }]
    );
}

#[test]
fn an_acknowledged_offset_the_log_does_not_hold_the_value_at_is_misplaced() {
    let (h, f) = clean();
    let h = h.replace(r#""value":120,"offset":20,"#, r#""value":120,"offset":21,"#);
    assert_eq!(
        anomalies(&h, &f),
        vec![Anomaly::Misplaced {
            value: v(120),
            acked_offset: 21,
            found_offset: 20
        }]
    );
}

#[test]
fn bad_files_are_refused_naming_the_line_and_field() {
    let err = |s: &str| read_history(Cursor::new(s.as_bytes())).unwrap_err();
    let ok = r#"{"type":"invoke","process":0,"f":"append","value":1,"time":1}"#;
    assert!(matches!(
        err(&format!("{ok}\n{{not json\n")),
        ParseError::Json { line: 2, .. }
    ));
    assert!(matches!(
        err(r#"{"type":"ok","process":0,"f":"append","value":1,"time":1}"#),
        ParseError::Field {
            line: 1,
            field: "offset",
            ..
        }
    ));
    assert!(matches!(
        err(r#"{"type":"ok","process":-1,"f":"append","value":1,"offset":0,"time":1}"#),
        ParseError::Field {
            field: "process",
            ..
        }
    ));
    assert!(matches!(
        err(r#"{"type":"done","process":0,"f":"append","value":1,"time":1}"#),
        ParseError::Field { field: "type", .. }
    ));
    assert!(matches!(
        err(r#"{"type":"invoke","process":0,"f":"append","value":[1],"time":1}"#),
        ParseError::Field { field: "value", .. }
    ));
    let long = format!(
        "{ok}\n{}\n",
        " ".repeat(corelog_chaos::history::MAX_LINE_BYTES + 1)
    );
    assert!(matches!(err(&long), ParseError::LineTooLong { line: 2 }));
    let fin = |s: &str| read_final(Cursor::new(s.as_bytes())).unwrap_err();
    assert!(matches!(
        fin(r#"{"replica":{}}"#),
        ParseError::Field {
            field: "replicas",
            ..
        }
    ));
    assert!(matches!(
        fin(r#"{"replicas":{"a":[[0]]}}"#),
        ParseError::Field { .. }
    ));
    assert!(matches!(
        fin(r#"{"replicas":{"a":[[-1,5]]}}"#),
        ParseError::Field { .. }
    ));
}

#[test]
fn the_command_exits_zero_on_a_clean_run_and_one_on_an_anomaly() {
    let dir = std::env::temp_dir().join(format!("corelog-chaos-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (h, f) = clean();
    let run = |h: &str, f: &str| {
        std::fs::write(dir.join("h.jsonl"), h).unwrap();
        std::fs::write(dir.join("f.json"), f).unwrap();
        Command::new(env!("CARGO_BIN_EXE_corelog-chaos"))
            .arg("check")
            .arg("--history")
            .arg(dir.join("h.jsonl"))
            .arg("--final")
            .arg(dir.join("f.json"))
            .output()
            .unwrap()
    };
    let out = run(&h, &f);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("chaos: 31 ops, 30 acked, 0 lost, 0 duplicated, 0 reordered, 0 divergent"),
        "{text}"
    );
    let out = run(&h, &f.replace(",[29,129]", ""));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("lost: value 129 acknowledged at offset 29 is in no replica"),
        "{text}"
    );
    assert!(text.contains("1 lost"), "{text}");
    let out = run("{bad\n", &f);
    assert_eq!(out.status.code(), Some(2));
    std::fs::remove_dir_all(&dir).unwrap();
}
