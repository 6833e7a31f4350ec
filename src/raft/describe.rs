//! Human-readable one-line descriptions of Raft values, in exactly the text
//! etcd-raft's `Describe*` helpers print, so that etcd-raft's scenario files
//! can be compared line by line with what corelog does.
//!
//! Owns formatting only: it never changes a value, never fails (a conf change
//! entry whose data does not decode prints the decode error in its place) and
//! allocates only the strings it returns. Node ids in message headers print in
//! hex, every other number in decimal, entry data as a Go-quoted string.

use std::fmt::Write as _;

use prost::Message as _;

use super::raft::{
    LOCAL_APPEND_THREAD, LOCAL_APPLY_THREAD, SoftState, is_empty_hard_state, is_empty_snap,
};
use super::raw_node::Ready;
use super::read_only::ReadState;
use crate::raftpb::{
    ConfChange, ConfChangeSingle, ConfChangeTransition, ConfChangeType, ConfChangeV2, ConfState,
    Entry, EntryType, HardState, Message, MessageType, Snapshot,
};

/// Formats the data of a normal entry. `None` means the default: the bytes
/// as a Go-quoted string (`"foo"`).
pub type EntryFormatter<'a> = Option<&'a dyn Fn(&[u8]) -> String>;

/// `Term:1 Vote:1 Commit:2`; the vote is left out while it is 0.
pub fn describe_hard_state(hs: &HardState) -> String {
    let mut s = format!("Term:{}", hs.term);
    if hs.vote != 0 {
        let _ = write!(s, " Vote:{}", hs.vote);
    }
    let _ = write!(s, " Commit:{}", hs.commit);
    s
}

/// `Voters:[1 2 3] VotersOutgoing:[] Learners:[] LearnersNext:[] AutoLeave:false`.
pub fn describe_conf_state(cs: &ConfState) -> String {
    format!(
        "Voters:{} VotersOutgoing:{} Learners:{} LearnersNext:{} AutoLeave:{}",
        id_list(&cs.voters),
        id_list(&cs.voters_outgoing),
        id_list(&cs.learners),
        id_list(&cs.learners_next),
        cs.auto_leave
    )
}

/// `Index:4 Term:1 ConfState:Voters:[...] ...` (a missing metadata reads as
/// all zeros, as in etcd).
pub fn describe_snapshot(snap: &Snapshot) -> String {
    let meta = snap.metadata.clone().unwrap_or_default();
    format!(
        "Index:{} Term:{} ConfState:{}",
        meta.index,
        meta.term,
        describe_conf_state(&meta.conf_state.unwrap_or_default())
    )
}

/// `Lead:1 State:StateLeader`.
pub fn describe_soft_state(ss: &SoftState) -> String {
    format!("Lead:{} State:{}", ss.lead, ss.raft_state)
}

/// Read states as Go's `%v` prints them: `[{index [ctx bytes in decimal]}]`.
pub fn describe_read_states(rss: &[ReadState]) -> String {
    let mut s = String::from("[");
    for (i, rs) in rss.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        let _ = write!(s, "{{{} [", rs.index);
        for (j, b) in rs.request_ctx.iter().enumerate() {
            if j > 0 {
                s.push(' ');
            }
            let _ = write!(s, "{b}");
        }
        s.push_str("]}");
    }
    s.push(']');
    s
}

/// A Ready section by section (soft state, hard state, read states,
/// entries, snapshot, committed entries, messages), under the header
/// `Ready MustSync=<bool>:`; `<empty Ready>` when it holds nothing. Each
/// section line ends in a newline.
pub fn describe_ready(rd: &Ready, f: EntryFormatter<'_>) -> String {
    let mut s = String::new();
    if let Some(ss) = &rd.soft_state {
        s.push_str(&describe_soft_state(ss));
        s.push('\n');
    }
    if let Some(hs) = rd.hard_state.as_ref().filter(|hs| !is_empty_hard_state(hs)) {
        let _ = writeln!(s, "HardState {}", describe_hard_state(hs));
    }
    if !rd.read_states.is_empty() {
        let _ = writeln!(s, "ReadStates {}", describe_read_states(&rd.read_states));
    }
    if !rd.entries.is_empty() {
        s.push_str("Entries:\n");
        s.push_str(&describe_entries(&rd.entries, f));
    }
    if let Some(snap) = rd.snapshot.as_ref().filter(|snap| !is_empty_snap(snap)) {
        let _ = writeln!(s, "Snapshot {}", describe_snapshot(snap));
    }
    if !rd.committed_entries.is_empty() {
        s.push_str("CommittedEntries:\n");
        s.push_str(&describe_entries(&rd.committed_entries, f));
    }
    if !rd.messages.is_empty() {
        s.push_str("Messages:\n");
        for m in &rd.messages {
            s.push_str(&describe_message(m, f));
            s.push('\n');
        }
    }
    if s.is_empty() {
        "<empty Ready>".to_string()
    } else {
        format!("Ready MustSync={}:\n{s}", rd.must_sync)
    }
}

/// `1->2 MsgApp Term:1 Log:1/3 Commit:4 Entries:[1/4 EntryNormal "x"]`; more
/// than one entry prints one per line, a snapshot on a line of its own, and
/// the responses a storage message carries one per line, indented, between
/// `Responses:[` and `]`.
pub fn describe_message(m: &Message, f: EntryFormatter<'_>) -> String {
    let mut s = String::new();
    describe_message_into(&mut s, "", m, f);
    s
}

/// Appends the description of `m` to `s`, every line after the first
/// starting with `indent` (nested responses add two spaces each).
fn describe_message_into(s: &mut String, indent: &str, m: &Message, f: EntryFormatter<'_>) {
    let _ = write!(
        s,
        "{indent}{}->{} {} Term:{} Log:{}/{}",
        describe_target(m.from),
        describe_target(m.to),
        message_type_name(m.r#type),
        m.term,
        m.log_term,
        m.index
    );
    if m.reject {
        let _ = write!(s, " Rejected (Hint: {})", m.reject_hint);
    }
    if m.commit != 0 {
        let _ = write!(s, " Commit:{}", m.commit);
    }
    if m.vote != 0 {
        let _ = write!(s, " Vote:{}", m.vote);
    }
    match m.entries.as_slice() {
        [] => {}
        [e] => {
            let _ = write!(s, " Entries:[{}]", describe_entry(e, f));
        }
        ents => {
            s.push_str(" Entries:[");
            for e in ents {
                let _ = write!(s, "\n{indent}  {}", describe_entry(e, f));
            }
            let _ = write!(s, "\n{indent}]");
        }
    }
    if let Some(snap) = m.snapshot.as_ref().filter(|snap| !is_empty_snap(snap)) {
        let _ = write!(s, "\n{indent}  Snapshot: {}", describe_snapshot(snap));
    }
    if !m.responses.is_empty() {
        s.push_str(" Responses:[");
        let inner = format!("{indent}  ");
        for r in &m.responses {
            s.push('\n');
            describe_message_into(s, &inner, r, f);
        }
        let _ = write!(s, "\n{indent}]");
    }
}

/// A message endpoint: `None` for 0, the local storage threads by name,
/// otherwise the id in lower-case hex.
fn describe_target(id: u64) -> String {
    match id {
        0 => "None".to_string(),
        LOCAL_APPEND_THREAD => "AppendThread".to_string(),
        LOCAL_APPLY_THREAD => "ApplyThread".to_string(),
        id => format!("{id:x}"),
    }
}

/// `1/4 EntryNormal "data"`, `1/5 EntryConfChangeV2 v2 l3`; conf change
/// entries decode their data and print the changes in `v1 l2 r3 u4` form.
pub fn describe_entry(e: &Entry, f: EntryFormatter<'_>) -> String {
    let formatted = match EntryType::try_from(e.r#type) {
        Ok(EntryType::EntryNormal) => match f {
            Some(f) => f(&e.data),
            None => go_quote(&e.data),
        },
        Ok(EntryType::EntryConfChange) => match ConfChange::decode(e.data.clone()) {
            Ok(cc) => changes_to_string(&[ConfChangeSingle {
                r#type: cc.r#type,
                node_id: cc.node_id,
            }]),
            Err(err) => err.to_string(),
        },
        Ok(EntryType::EntryConfChangeV2) => match ConfChangeV2::decode(e.data.clone()) {
            Ok(cc) => changes_to_string(&cc.changes),
            Err(err) => err.to_string(),
        },
        // An unknown type prints as its number with no data, as Go's %v does.
        Err(_) => String::new(),
    };
    let sep = if formatted.is_empty() { "" } else { " " };
    format!(
        "{}/{} {}{sep}{formatted}",
        e.term,
        e.index,
        entry_type_name(e.r#type)
    )
}

/// One `describe_entry` line per entry, each ending in a newline.
pub fn describe_entries(ents: &[Entry], f: EntryFormatter<'_>) -> String {
    let mut s = String::new();
    for e in ents {
        s.push_str(&describe_entry(e, f));
        s.push('\n');
    }
    s
}

/// `transition:ConfChangeTransitionAuto changes:{type:ConfChangeAddNode node_id:2}`
/// (plus ` context:"..."` when there is one), for a v1 or v2 conf change.
pub fn describe_conf_change_v2(cc: &ConfChangeV2) -> String {
    let mut s = format!(
        "transition:{}",
        ConfChangeTransition::try_from(cc.transition)
            .map(|t| t.as_str_name().to_string())
            .unwrap_or_else(|_| cc.transition.to_string())
    );
    for c in &cc.changes {
        let _ = write!(
            s,
            " changes:{{type:{} node_id:{}}}",
            conf_change_type_name(c.r#type),
            c.node_id
        );
    }
    if !cc.context.is_empty() {
        let _ = write!(s, " context:{}", go_quote(&cc.context));
    }
    s
}

/// `describe_conf_change_v2` of a v1 conf change (one change, auto
/// transition, its context).
pub fn describe_conf_change(cc: &ConfChange) -> String {
    describe_conf_change_v2(&ConfChangeV2 {
        transition: ConfChangeTransition::ConfChangeTransitionAuto as i32,
        changes: vec![ConfChangeSingle {
            r#type: cc.r#type,
            node_id: cc.node_id,
        }],
        context: cc.context.clone(),
    })
}

/// The name of a message type, or its number when it has none.
pub fn message_type_name(t: i32) -> String {
    MessageType::try_from(t)
        .map(|t| t.as_str_name().to_string())
        .unwrap_or_else(|_| t.to_string())
}

fn entry_type_name(t: i32) -> String {
    EntryType::try_from(t)
        .map(|t| t.as_str_name().to_string())
        .unwrap_or_else(|_| t.to_string())
}

fn conf_change_type_name(t: i32) -> String {
    ConfChangeType::try_from(t)
        .map(|t| t.as_str_name().to_string())
        .unwrap_or_else(|_| t.to_string())
}

/// etcd's `v2 l3 r4 u5` notation of a list of changes.
fn changes_to_string(ccs: &[ConfChangeSingle]) -> String {
    let mut s = String::new();
    for (i, cc) in ccs.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(match ConfChangeType::try_from(cc.r#type) {
            Ok(ConfChangeType::ConfChangeAddNode) => "v",
            Ok(ConfChangeType::ConfChangeAddLearnerNode) => "l",
            Ok(ConfChangeType::ConfChangeRemoveNode) => "r",
            Ok(ConfChangeType::ConfChangeUpdateNode) => "u",
            Err(_) => "unknown",
        });
        let _ = write!(s, "{}", cc.node_id);
    }
    s
}

/// A list of ids as Go's `%v` prints a slice: `[1 2 3]`, `[]` when empty.
pub fn id_list(ids: &[u64]) -> String {
    let mut s = String::from("[");
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        let _ = write!(s, "{id}");
    }
    s.push(']');
    s
}

/// Bytes as Go's `%q` prints them: a double-quoted string in which valid
/// UTF-8 printable characters stand as they are, `"` and `\` are escaped,
/// the usual control characters use their C escapes, other control
/// characters and invalid bytes print as `\xNN`, other non-printable
/// characters as `\uNNNN` / `\UNNNNNNNN`.
pub fn go_quote(data: &[u8]) -> String {
    let mut s = String::with_capacity(data.len() + 2);
    s.push('"');
    let mut rest = data;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(valid) => {
                push_escaped(&mut s, valid);
                rest = &[];
            }
            Err(err) => {
                let (valid, after) = rest.split_at(err.valid_up_to());
                // The prefix up to valid_up_to() is valid UTF-8 by definition.
                push_escaped(&mut s, std::str::from_utf8(valid).unwrap_or_default());
                // Go decodes an invalid sequence one byte at a time.
                if let Some((b, tail)) = after.split_first() {
                    let _ = write!(s, "\\x{b:02x}");
                    rest = tail;
                } else {
                    rest = &[];
                }
            }
        }
    }
    s.push('"');
    s
}

fn push_escaped(s: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '"' => s.push_str("\\\""),
            '\\' => s.push_str("\\\\"),
            '\u{7}' => s.push_str("\\a"),
            '\u{8}' => s.push_str("\\b"),
            '\u{c}' => s.push_str("\\f"),
            '\n' => s.push_str("\\n"),
            '\r' => s.push_str("\\r"),
            '\t' => s.push_str("\\t"),
            '\u{b}' => s.push_str("\\v"),
            c if c.is_ascii() => {
                if c == ' ' || c.is_ascii_graphic() {
                    s.push(c);
                } else {
                    let _ = write!(s, "\\x{:02x}", c as u32);
                }
            }
            c if is_go_printable(c) => s.push(c),
            c if (c as u32) < 0x10000 => {
                let _ = write!(s, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(s, "\\U{:08x}", c as u32);
            }
        }
    }
}

/// An approximation of Go's `unicode.IsPrint` for non-ASCII characters:
/// graphic characters print, controls, spaces other than ' ' and the
/// invisible format characters do not.
fn is_go_printable(c: char) -> bool {
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    !matches!(
        c as u32,
        0xad | 0x600..=0x605 | 0x61c | 0x6dd | 0x70f | 0x180e | 0x200b..=0x200f
            | 0x202a..=0x202e | 0x2060..=0x206f | 0xfeff | 0xfff9..=0xfffb
            | 0xe000..=0xf8ff | 0xf0000..=0x10ffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::raftpb::SnapshotMetadata;
    use bytes::Bytes;

    fn entry(term: u64, index: u64, t: EntryType, data: impl Into<Bytes>) -> Entry {
        Entry {
            term,
            index,
            r#type: t as i32,
            data: data.into(),
        }
    }

    fn msg(t: MessageType, from: u64, to: u64, term: u64) -> Message {
        Message {
            r#type: t as i32,
            from,
            to,
            term,
            ..Default::default()
        }
    }

    fn cs(voters: &[u64], outgoing: &[u64], auto_leave: bool) -> ConfState {
        ConfState {
            voters: voters.to_vec(),
            voters_outgoing: outgoing.to_vec(),
            auto_leave,
            ..Default::default()
        }
    }

    #[test]
    fn hard_state_omits_zero_vote() {
        let hs = HardState {
            term: 1,
            vote: 1,
            commit: 2,
        };
        assert_eq!(describe_hard_state(&hs), "Term:1 Vote:1 Commit:2");
        let hs = HardState {
            term: 1,
            vote: 0,
            commit: 0,
        };
        assert_eq!(describe_hard_state(&hs), "Term:1 Commit:0");
    }

    #[test]
    fn normal_entries_quote_their_data() {
        let e = entry(1, 3, EntryType::EntryNormal, Bytes::new());
        assert_eq!(describe_entry(&e, None), "1/3 EntryNormal \"\"");
        let e = entry(1, 12, EntryType::EntryNormal, "prop_1_12");
        assert_eq!(describe_entry(&e, None), "1/12 EntryNormal \"prop_1_12\"");
        let upper = |d: &[u8]| String::from_utf8_lossy(d).to_uppercase();
        assert_eq!(
            describe_entry(&e, Some(&upper)),
            "1/12 EntryNormal PROP_1_12"
        );
    }

    #[test]
    fn entry_with_a_nul_byte_and_a_custom_formatter() {
        // etcd util_test.go TestDescribeEntry.
        let e = entry(1, 2, EntryType::EntryNormal, &b"hello\x00world"[..]);
        assert_eq!(
            describe_entry(&e, None),
            "1/2 EntryNormal \"hello\\x00world\""
        );
        let upper = |d: &[u8]| String::from_utf8_lossy(d).to_uppercase();
        assert_eq!(
            describe_entry(&e, Some(&upper)),
            "1/2 EntryNormal HELLO\x00WORLD"
        );
    }

    #[test]
    fn conf_change_entries_decode_their_changes() {
        let v2 = ConfChangeV2 {
            changes: vec![
                ConfChangeSingle {
                    r#type: ConfChangeType::ConfChangeAddNode as i32,
                    node_id: 2,
                },
                ConfChangeSingle {
                    r#type: ConfChangeType::ConfChangeAddNode as i32,
                    node_id: 3,
                },
            ],
            ..Default::default()
        };
        let e = entry(1, 4, EntryType::EntryConfChangeV2, v2.encode_to_vec());
        assert_eq!(describe_entry(&e, None), "1/4 EntryConfChangeV2 v2 v3");
        // Leaving a joint configuration: no changes, nothing after the type.
        let e = entry(
            1,
            5,
            EntryType::EntryConfChangeV2,
            ConfChangeV2::default().encode_to_vec(),
        );
        assert_eq!(describe_entry(&e, None), "1/5 EntryConfChangeV2");
        let v1 = ConfChange {
            r#type: ConfChangeType::ConfChangeRemoveNode as i32,
            node_id: 1,
            ..Default::default()
        };
        let e = entry(1, 4, EntryType::EntryConfChange, v1.encode_to_vec());
        assert_eq!(describe_entry(&e, None), "1/4 EntryConfChange r1");
        let v1 = ConfChange {
            r#type: ConfChangeType::ConfChangeAddLearnerNode as i32,
            node_id: 4,
            ..Default::default()
        };
        let e = entry(2, 7, EntryType::EntryConfChange, v1.encode_to_vec());
        assert_eq!(describe_entry(&e, None), "2/7 EntryConfChange l4");
    }

    #[test]
    fn undecodable_conf_change_prints_the_error_not_a_panic() {
        let e = entry(1, 4, EntryType::EntryConfChangeV2, vec![0xffu8, 0xff, 0xff]);
        let s = describe_entry(&e, None);
        assert!(s.starts_with("1/4 EntryConfChangeV2 "), "{s}");
        assert!(s.len() > "1/4 EntryConfChangeV2 ".len(), "{s}");
    }

    #[test]
    fn entries_one_per_line() {
        let ents = [
            entry(1, 3, EntryType::EntryNormal, Bytes::new()),
            entry(1, 4, EntryType::EntryNormal, "a"),
        ];
        assert_eq!(
            describe_entries(&ents, None),
            "1/3 EntryNormal \"\"\n1/4 EntryNormal \"a\"\n"
        );
        assert_eq!(describe_entries(&[], None), "");
    }

    #[test]
    fn message_with_one_entry_and_commit() {
        let mut m = msg(MessageType::MsgApp, 1, 3, 1);
        m.log_term = 1;
        m.index = 11;
        m.commit = 11;
        m.entries = vec![entry(1, 12, EntryType::EntryNormal, "prop_1_12")];
        assert_eq!(
            describe_message(&m, None),
            "1->3 MsgApp Term:1 Log:1/11 Commit:11 Entries:[1/12 EntryNormal \"prop_1_12\"]"
        );
    }

    #[test]
    fn rejected_response_shows_its_hint() {
        let mut m = msg(MessageType::MsgAppResp, 2, 1, 1);
        m.index = 3;
        m.reject = true;
        assert_eq!(
            describe_message(&m, None),
            "2->1 MsgAppResp Term:1 Log:0/3 Rejected (Hint: 0)"
        );
        let mut m = msg(MessageType::MsgAppResp, 3, 1, 1);
        m.index = 13;
        assert_eq!(
            describe_message(&m, None),
            "3->1 MsgAppResp Term:1 Log:0/13"
        );
    }

    #[test]
    fn message_with_many_entries_lists_one_per_line() {
        let mut m = msg(MessageType::MsgApp, 1, 2, 1);
        m.log_term = 1;
        m.index = 11;
        m.commit = 11;
        m.entries = vec![
            entry(1, 12, EntryType::EntryNormal, "a"),
            entry(1, 13, EntryType::EntryNormal, "b"),
        ];
        assert_eq!(
            describe_message(&m, None),
            "1->2 MsgApp Term:1 Log:1/11 Commit:11 Entries:[\n  1/12 EntryNormal \"a\"\n  1/13 EntryNormal \"b\"\n]"
        );
    }

    #[test]
    fn ids_print_in_hex() {
        let m = msg(MessageType::MsgHeartbeat, 10, 11, 2);
        assert_eq!(
            describe_message(&m, None),
            "a->b MsgHeartbeat Term:2 Log:0/0"
        );
        let m = msg(MessageType::MsgHup, 0, 1, 0);
        assert_eq!(describe_message(&m, None), "None->1 MsgHup Term:0 Log:0/0");
        let m = msg(MessageType::MsgApp, 1, u64::MAX, 0);
        assert_eq!(
            describe_message(&m, None),
            "1->AppendThread MsgApp Term:0 Log:0/0"
        );
    }

    #[test]
    fn snapshot_message_prints_the_snapshot_below() {
        let mut m = msg(MessageType::MsgSnap, 1, 2, 1);
        m.snapshot = Some(Box::new(Snapshot {
            data: Bytes::new(),
            metadata: Some(SnapshotMetadata {
                conf_state: Some(cs(&[1, 2, 3], &[1], true)),
                index: 4,
                term: 1,
            }),
        }));
        assert_eq!(
            describe_message(&m, None),
            "1->2 MsgSnap Term:1 Log:0/0\n  Snapshot: Index:4 Term:1 ConfState:Voters:[1 2 3] \
             VotersOutgoing:[1] Learners:[] LearnersNext:[] AutoLeave:true"
        );
        // An empty snapshot is not printed.
        m.snapshot = Some(Box::default());
        assert_eq!(describe_message(&m, None), "1->2 MsgSnap Term:1 Log:0/0");
    }

    #[test]
    fn conf_state_and_snapshot() {
        assert_eq!(
            describe_conf_state(&ConfState {
                voters: vec![1, 2, 3],
                learners: vec![4],
                ..Default::default()
            }),
            "Voters:[1 2 3] VotersOutgoing:[] Learners:[4] LearnersNext:[] AutoLeave:false"
        );
        assert_eq!(
            describe_snapshot(&Snapshot::default()),
            "Index:0 Term:0 ConfState:Voters:[] VotersOutgoing:[] Learners:[] LearnersNext:[] AutoLeave:false"
        );
    }

    #[test]
    fn conf_change_text() {
        let cc = ConfChange {
            r#type: ConfChangeType::ConfChangeAddNode as i32,
            node_id: 2,
            context: Bytes::from_static(b"ctx"),
            ..Default::default()
        };
        assert_eq!(
            describe_conf_change(&cc),
            "transition:ConfChangeTransitionAuto changes:{type:ConfChangeAddNode node_id:2} context:\"ctx\""
        );
    }

    #[test]
    fn ready_sections_in_etcd_order() {
        use crate::raft::raft::StateType;
        assert_eq!(describe_ready(&Ready::default(), None), "<empty Ready>");
        let mut rd = Ready {
            soft_state: Some(SoftState {
                lead: 0,
                raft_state: StateType::Candidate,
            }),
            hard_state: Some(HardState {
                term: 1,
                vote: 1,
                commit: 2,
            }),
            must_sync: true,
            ..Default::default()
        };
        assert_eq!(
            describe_ready(&rd, None),
            "Ready MustSync=true:\nLead:0 State:StateCandidate\nHardState Term:1 Vote:1 Commit:2\n"
        );
        rd.soft_state = None;
        rd.hard_state = Some(HardState::default());
        rd.must_sync = false;
        rd.entries = vec![entry(1, 5, EntryType::EntryNormal, "e")];
        rd.committed_entries = vec![entry(1, 4, EntryType::EntryNormal, "c")];
        let mut m = msg(MessageType::MsgApp, 1, 2, 1);
        m.log_term = 1;
        m.index = 5;
        m.commit = 5;
        rd.messages = vec![m];
        rd.read_states = vec![ReadState {
            index: 3,
            request_ctx: Bytes::from_static(b"ab"),
        }];
        assert_eq!(
            describe_ready(&rd, None),
            "Ready MustSync=false:\nReadStates [{3 [97 98]}]\nEntries:\n1/5 EntryNormal \"e\"\n\
             CommittedEntries:\n1/4 EntryNormal \"c\"\nMessages:\n1->2 MsgApp Term:1 Log:1/5 Commit:5\n"
        );
    }

    #[test]
    fn go_quote_escapes_like_go() {
        assert_eq!(go_quote(b""), "\"\"");
        assert_eq!(go_quote(b"a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(go_quote(b"\n\t\0\x7f"), "\"\\n\\t\\x00\\x7f\"");
        assert_eq!(go_quote(b"\xff\xfeok"), "\"\\xff\\xfeok\"");
        assert_eq!(go_quote("héllo".as_bytes()), "\"héllo\"");
        assert_eq!(go_quote("\u{a0}".as_bytes()), "\"\\u00a0\"");
        assert_eq!(go_quote(b"\xe2\x82"), "\"\\xe2\\x82\"");
    }
}
