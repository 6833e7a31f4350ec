//! Conveniences on the generated raftpb types, as etcd-raft has them in
//! raftpb/confchange.go, raftpb/confstate.go and util.go: converting and
//! classifying configuration changes, their `v1 l2 r3 u4` text form,
//! comparing `ConfState`s, and classifying message types. Pure functions on
//! values; nothing here touches Raft state.

// The parent module silences clippy for the generated code; this file is
// hand-written and held to the usual bar.
#![warn(clippy::all)]

use bytes::Bytes;
use prost::Message as _;

use super::{
    ConfChange, ConfChangeSingle, ConfChangeTransition, ConfChangeType, ConfChangeV2, ConfState,
    EntryType, MessageType,
};

/// Either kind of configuration change (legacy `ConfChange` or
/// `ConfChangeV2`), handled uniformly.
pub trait ConfChangeI {
    /// The same change as a `ConfChangeV2`.
    fn as_v2(&self) -> ConfChangeV2;
    /// The legacy change, if this is one.
    fn as_v1(&self) -> Option<&ConfChange>;
}

impl ConfChange {
    /// The same single change as a `ConfChangeV2` (automatic transition).
    pub fn as_v2(&self) -> ConfChangeV2 {
        ConfChangeV2 {
            transition: ConfChangeTransition::ConfChangeTransitionAuto as i32,
            changes: vec![ConfChangeSingle {
                r#type: self.r#type,
                node_id: self.node_id,
            }],
            context: self.context.clone(),
        }
    }
}

impl ConfChangeI for ConfChange {
    fn as_v2(&self) -> ConfChangeV2 {
        ConfChange::as_v2(self)
    }
    fn as_v1(&self) -> Option<&ConfChange> {
        Some(self)
    }
}

impl ConfChangeI for ConfChangeV2 {
    fn as_v2(&self) -> ConfChangeV2 {
        self.clone()
    }
    fn as_v1(&self) -> Option<&ConfChange> {
        None
    }
}

/// The entry type and encoded bytes a configuration change is proposed as:
/// a legacy change stays `EntryConfChange`, anything else is
/// `EntryConfChangeV2`.
pub fn marshal_conf_change(cc: &dyn ConfChangeI) -> (EntryType, Bytes) {
    match cc.as_v1() {
        Some(v1) => (EntryType::EntryConfChange, Bytes::from(v1.encode_to_vec())),
        None => (
            EntryType::EntryConfChangeV2,
            Bytes::from(cc.as_v2().encode_to_vec()),
        ),
    }
}

impl ConfChangeV2 {
    /// Whether this change uses joint consensus, and if so whether the joint
    /// configuration is left automatically: `Some(auto_leave)` when the
    /// transition is not `Auto` or there is more than one change, `None` for
    /// a simple change.
    ///
    /// # Panics
    /// On a transition value outside the enum, as etcd-raft does: a change
    /// with one cannot be carried out, and applying it half-way is worse.
    pub fn enter_joint(&self) -> Option<bool> {
        let transition = ConfChangeTransition::try_from(self.transition).unwrap_or_else(|_| {
            panic!(
                "ConfChangeV2::enter_joint: unknown transition {} in {self:?}",
                self.transition
            )
        });
        if transition == ConfChangeTransition::ConfChangeTransitionAuto && self.changes.len() <= 1 {
            return None;
        }
        Some(match transition {
            ConfChangeTransition::ConfChangeTransitionAuto
            | ConfChangeTransition::ConfChangeTransitionJointImplicit => true,
            ConfChangeTransition::ConfChangeTransitionJointExplicit => false,
        })
    }

    /// Whether this change leaves a joint configuration: an automatic
    /// transition with no changes (the context does not matter).
    pub fn leave_joint(&self) -> bool {
        self.transition == ConfChangeTransition::ConfChangeTransitionAuto as i32
            && self.changes.is_empty()
    }
}

/// Parses etcd's space-separated change list: `vN` makes N a voter, `lN` a
/// learner, `rN` removes N, `uN` updates N. Errors read as etcd's do.
pub fn conf_changes_from_string(s: &str) -> Result<Vec<ConfChangeSingle>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(Vec::new());
    }
    // Split on single spaces like etcd: a double space is an empty token,
    // which is an error.
    let mut ccs = Vec::new();
    for tok in s.split(' ') {
        if tok.len() < 2 {
            return Err(format!("unknown token {tok}"));
        }
        let t = match tok.as_bytes()[0] {
            b'v' => ConfChangeType::ConfChangeAddNode,
            b'l' => ConfChangeType::ConfChangeAddLearnerNode,
            b'r' => ConfChangeType::ConfChangeRemoveNode,
            b'u' => ConfChangeType::ConfChangeUpdateNode,
            _ => return Err(format!("unknown input: {tok}")),
        };
        let node_id = parse_uint(&tok[1..])?;
        ccs.push(ConfChangeSingle {
            r#type: t as i32,
            node_id,
        });
    }
    Ok(ccs)
}

/// A decimal u64 with the error texts of Go's `strconv.ParseUint` (which,
/// unlike Rust's parser, refuses a leading `+`).
fn parse_uint(s: &str) -> Result<u64, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("strconv.ParseUint: parsing {s:?}: invalid syntax"));
    }
    s.parse()
        .map_err(|_| format!("strconv.ParseUint: parsing {s:?}: value out of range"))
}

/// The inverse of `conf_changes_from_string`.
pub fn conf_changes_to_string(ccs: &[ConfChangeSingle]) -> String {
    let mut out = String::new();
    for (i, cc) in ccs.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(match ConfChangeType::try_from(cc.r#type) {
            Ok(ConfChangeType::ConfChangeAddNode) => "v",
            Ok(ConfChangeType::ConfChangeAddLearnerNode) => "l",
            Ok(ConfChangeType::ConfChangeRemoveNode) => "r",
            Ok(ConfChangeType::ConfChangeUpdateNode) => "u",
            Err(_) => "unknown",
        });
        out.push_str(&cc.node_id.to_string());
    }
    out
}

impl ConfState {
    /// Ok if both describe the same configuration, whatever the order of
    /// ids in each list; otherwise an error showing both (sorted) states.
    pub fn equivalent(&self, other: &ConfState) -> Result<(), String> {
        fn sorted(cs: &ConfState) -> ConfState {
            let mut cs = cs.clone();
            cs.voters.sort_unstable();
            cs.learners.sort_unstable();
            cs.voters_outgoing.sort_unstable();
            cs.learners_next.sort_unstable();
            cs
        }
        let (a, b) = (sorted(self), sorted(other));
        if a == b {
            Ok(())
        } else {
            Err(format!(
                "ConfStates not equivalent after sorting:\n{a:?}\n{b:?}\nInputs were:\n{self:?}\n{other:?}"
            ))
        }
    }
}

impl MessageType {
    /// Whether the message is generated locally and never crosses the wire
    /// (etcd's IsLocalMsg).
    pub fn is_local(self) -> bool {
        matches!(
            self,
            MessageType::MsgHup
                | MessageType::MsgBeat
                | MessageType::MsgUnreachable
                | MessageType::MsgSnapStatus
                | MessageType::MsgCheckQuorum
                | MessageType::MsgStorageAppend
                | MessageType::MsgStorageAppendResp
                | MessageType::MsgStorageApply
                | MessageType::MsgStorageApplyResp
        )
    }

    /// Whether the message answers another one (etcd's IsResponseMsg).
    pub fn is_response(self) -> bool {
        matches!(
            self,
            MessageType::MsgAppResp
                | MessageType::MsgVoteResp
                | MessageType::MsgHeartbeatResp
                | MessageType::MsgUnreachable
                | MessageType::MsgReadIndexResp
                | MessageType::MsgPreVoteResp
                | MessageType::MsgStorageAppendResp
                | MessageType::MsgStorageApplyResp
        )
    }
}

/// The response type of a vote request: `MsgVoteResp` for `MsgVote`,
/// `MsgPreVoteResp` for `MsgPreVote`.
///
/// # Panics
/// For any other type: callers only ask this about vote requests.
pub fn vote_resp_msg_type(t: MessageType) -> MessageType {
    match t {
        MessageType::MsgVote => MessageType::MsgVoteResp,
        MessageType::MsgPreVote => MessageType::MsgPreVoteResp,
        other => panic!("vote_resp_msg_type: not a vote message: {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cc(t: ConfChangeType, node_id: u64) -> ConfChangeSingle {
        ConfChangeSingle {
            r#type: t as i32,
            node_id,
        }
    }

    #[test]
    fn conf_change_as_v2_is_one_auto_change_with_the_context() {
        let v1 = ConfChange {
            r#type: ConfChangeType::ConfChangeAddLearnerNode as i32,
            node_id: 7,
            context: Bytes::from_static(b"ctx"),
            id: 3,
        };
        let v2 = v1.as_v2();
        assert_eq!(
            v2.transition,
            ConfChangeTransition::ConfChangeTransitionAuto as i32
        );
        assert_eq!(
            v2.changes,
            vec![cc(ConfChangeType::ConfChangeAddLearnerNode, 7)]
        );
        assert_eq!(v2.context, Bytes::from_static(b"ctx"));
        assert_eq!(<ConfChange as ConfChangeI>::as_v1(&v1), Some(&v1));
        assert!(ConfChangeI::as_v1(&v2).is_none());
    }

    #[test]
    fn marshal_keeps_v1_as_v1() {
        let v1 = ConfChange {
            node_id: 2,
            ..ConfChange::default()
        };
        let (t, data) = marshal_conf_change(&v1);
        assert_eq!(t, EntryType::EntryConfChange);
        assert_eq!(ConfChange::decode(data).unwrap(), v1);
        let v2 = v1.as_v2();
        let (t, data) = marshal_conf_change(&v2);
        assert_eq!(t, EntryType::EntryConfChangeV2);
        assert_eq!(ConfChangeV2::decode(data).unwrap(), v2);
    }

    #[test]
    fn enter_joint_when_explicit_or_more_than_one_change() {
        use ConfChangeTransition::*;
        let one = vec![cc(ConfChangeType::ConfChangeAddNode, 1)];
        let two = vec![
            cc(ConfChangeType::ConfChangeAddNode, 1),
            cc(ConfChangeType::ConfChangeAddNode, 2),
        ];
        let v2 = |t: ConfChangeTransition, changes: &Vec<ConfChangeSingle>| ConfChangeV2 {
            transition: t as i32,
            changes: changes.clone(),
            context: Bytes::new(),
        };
        assert_eq!(v2(ConfChangeTransitionAuto, &vec![]).enter_joint(), None);
        assert_eq!(v2(ConfChangeTransitionAuto, &one).enter_joint(), None);
        assert_eq!(v2(ConfChangeTransitionAuto, &two).enter_joint(), Some(true));
        assert_eq!(
            v2(ConfChangeTransitionJointImplicit, &one).enter_joint(),
            Some(true)
        );
        assert_eq!(
            v2(ConfChangeTransitionJointExplicit, &one).enter_joint(),
            Some(false)
        );
        assert_eq!(
            v2(ConfChangeTransitionJointExplicit, &vec![]).enter_joint(),
            Some(false)
        );
    }

    #[test]
    fn leave_joint_is_the_empty_auto_change_whatever_the_context() {
        let mut v2 = ConfChangeV2::default();
        assert!(v2.leave_joint());
        v2.context = Bytes::from_static(b"some context");
        assert!(v2.leave_joint());
        v2.transition = ConfChangeTransition::ConfChangeTransitionJointImplicit as i32;
        assert!(!v2.leave_joint());
        v2.transition = ConfChangeTransition::ConfChangeTransitionJointExplicit as i32;
        assert!(!v2.leave_joint());
        v2.transition = ConfChangeTransition::ConfChangeTransitionAuto as i32;
        v2.changes.push(cc(ConfChangeType::ConfChangeAddNode, 0));
        assert!(!v2.leave_joint());
    }

    #[test]
    fn conf_change_strings_round_trip() {
        let s = "v1 l2 r3 u4";
        let ccs = conf_changes_from_string(s).unwrap();
        assert_eq!(
            ccs,
            vec![
                cc(ConfChangeType::ConfChangeAddNode, 1),
                cc(ConfChangeType::ConfChangeAddLearnerNode, 2),
                cc(ConfChangeType::ConfChangeRemoveNode, 3),
                cc(ConfChangeType::ConfChangeUpdateNode, 4),
            ]
        );
        assert_eq!(conf_changes_to_string(&ccs), s);
        assert_eq!(conf_changes_from_string("  \n").unwrap(), vec![]);
    }

    #[test]
    fn conf_change_string_errors_read_as_etcds() {
        assert_eq!(
            conf_changes_from_string("v").unwrap_err(),
            "unknown token v"
        );
        assert_eq!(
            conf_changes_from_string("x1").unwrap_err(),
            "unknown input: x1"
        );
        assert_eq!(
            conf_changes_from_string("v1  v2").unwrap_err(),
            "unknown token "
        );
        assert_eq!(
            conf_changes_from_string("v+1").unwrap_err(),
            "strconv.ParseUint: parsing \"+1\": invalid syntax"
        );
        assert_eq!(
            conf_changes_from_string("v99999999999999999999").unwrap_err(),
            "strconv.ParseUint: parsing \"99999999999999999999\": value out of range"
        );
    }

    #[test]
    fn conf_state_equivalence_ignores_order_only() {
        let a = ConfState {
            voters: vec![1, 2, 3],
            learners: vec![5, 4, 6],
            voters_outgoing: vec![9, 8, 7],
            learners_next: vec![10, 20, 15],
            auto_leave: false,
        };
        let b = ConfState {
            voters: vec![1, 2, 3],
            learners: vec![4, 5, 6],
            voters_outgoing: vec![7, 9, 8],
            learners_next: vec![20, 10, 15],
            auto_leave: false,
        };
        assert_eq!(a.equivalent(&b), Ok(()));
        let v = |ids: &[u64]| ConfState {
            voters: ids.to_vec(),
            ..ConfState::default()
        };
        assert!(v(&[1, 2, 3, 4]).equivalent(&v(&[2, 1, 3])).is_err());
        assert!(v(&[1, 4, 3]).equivalent(&v(&[2, 1, 3])).is_err());
        let auto = ConfState {
            auto_leave: true,
            ..ConfState::default()
        };
        assert!(auto.equivalent(&ConfState::default()).is_err());
    }

    #[test]
    fn message_type_classes() {
        use MessageType::*;
        let local = [
            MsgHup,
            MsgBeat,
            MsgUnreachable,
            MsgSnapStatus,
            MsgCheckQuorum,
            MsgStorageAppend,
            MsgStorageAppendResp,
            MsgStorageApply,
            MsgStorageApplyResp,
        ];
        let response = [
            MsgAppResp,
            MsgVoteResp,
            MsgHeartbeatResp,
            MsgUnreachable,
            MsgReadIndexResp,
            MsgPreVoteResp,
            MsgStorageAppendResp,
            MsgStorageApplyResp,
        ];
        for i in 0..=22 {
            let t = MessageType::try_from(i).unwrap();
            assert_eq!(t.is_local(), local.contains(&t), "{t:?}");
            assert_eq!(t.is_response(), response.contains(&t), "{t:?}");
        }
    }

    #[test]
    fn vote_responses() {
        assert_eq!(
            vote_resp_msg_type(MessageType::MsgVote),
            MessageType::MsgVoteResp
        );
        assert_eq!(
            vote_resp_msg_type(MessageType::MsgPreVote),
            MessageType::MsgPreVoteResp
        );
    }

    #[test]
    #[should_panic(expected = "not a vote message")]
    fn vote_response_of_a_non_vote_is_a_broken_contract() {
        vote_resp_msg_type(MessageType::MsgApp);
    }
}
