//! Membership changes seen from the cluster: what adding and removing
//! voters, adding and promoting learners, and removing the leader do to
//! replication, commitment and elections; and that a second conf change is
//! refused while one is pending. The interaction files cover the Ready
//! output of single changes; these check the consequences.

mod common;

use std::collections::BTreeSet;

use common::network::*;
use corelog::raft::{Error, StateType};
use corelog::raftpb::{
    ConfChange, ConfChangeSingle, ConfChangeTransition, ConfChangeType, ConfChangeV2, ConfState,
    EntryType, MessageType,
};

fn cc(t: ConfChangeType, id: u64) -> ConfChange {
    ConfChange {
        r#type: t as i32,
        node_id: id,
        ..Default::default()
    }
}

fn conf(voters: &[u64], learners: &[u64]) -> ConfState {
    ConfState {
        voters: voters.to_vec(),
        learners: learners.to_vec(),
        ..Default::default()
    }
}

/// Proposes `change` at `leader` and delivers everything that follows.
fn change(nw: &mut Network, leader: u64, change: ConfChange) {
    nw.node_mut(leader)
        .propose_conf_change(&change)
        .expect("conf change proposal");
    nw.flush();
}

fn committed(nw: &Network, id: u64) -> u64 {
    nw.node(id).raft.raft_log.committed
}

fn last(nw: &Network, id: u64) -> u64 {
    nw.node(id).raft.raft_log.last_index()
}

/// Proposes at `leader` and tells whether the proposal committed.
fn commits(nw: &mut Network, leader: u64) -> bool {
    nw.propose(leader, b"probe");
    committed(nw, leader) == last(nw, leader)
}

#[test]
fn added_voter_catches_up_from_a_snapshot_and_counts_toward_the_quorum() {
    // 3 runs from the start but is in nobody's configuration, its own
    // included: it learns the configuration from the leader's snapshot.
    let nodes = vec![new_node(1, &[1, 2]), new_node(2, &[1, 2]), new_node(3, &[])];
    let mut nw = Network::from_nodes(nodes);
    nw.campaign(1);
    assert_eq!(nw.state(1), StateType::Leader);
    nw.isolate(2);
    assert!(!commits(&mut nw, 1), "1 alone is no quorum of {{1, 2}}");
    nw.recover();
    nw.tick(1, 1);

    nw.isolate(3);
    change(&mut nw, 1, cc(ConfChangeType::ConfChangeAddNode, 3));
    assert_eq!(nw.node(1).raft.trk.conf_state(), conf(&[1, 2, 3], &[]));
    // The leader snapshots and compacts its log past the change.
    let applied = nw.node(1).raft.raft_log.applied;
    let cs = nw.node(1).raft.trk.conf_state();
    let store = nw.node_mut(1).store_mut();
    store
        .create_snapshot(applied, Some(cs), "state".into())
        .expect("snapshot");
    store.compact(applied).expect("compact");
    nw.recover();
    nw.tick(1, 1);

    assert!(
        nw.trace
            .iter()
            .any(|m| m.r#type() == MessageType::MsgSnap && m.to == 3)
    );
    for id in [1, 2, 3] {
        assert_eq!(nw.node(id).raft.trk.conf_state(), conf(&[1, 2, 3], &[]));
    }
    assert_eq!(last(&nw, 3), last(&nw, 1));
    assert_eq!(committed(&nw, 3), committed(&nw, 1));
    nw.isolate(2);
    assert!(commits(&mut nw, 1), "1 and 3 are a quorum of {{1, 2, 3}}");
}

#[test]
fn removed_voter_no_longer_counts_and_never_campaigns() {
    let mut nw = Network::new(&[1, 2, 3, 4]);
    nw.campaign(1);
    nw.isolate(3);
    nw.isolate(4);
    assert!(!commits(&mut nw, 1), "two of four are no quorum");
    nw.recover();
    nw.tick(1, 1);
    assert_eq!(committed(&nw, 1), last(&nw, 1));

    change(&mut nw, 1, cc(ConfChangeType::ConfChangeRemoveNode, 4));

    for id in [1, 2, 3, 4] {
        assert_eq!(nw.node(id).raft.trk.conf_state(), conf(&[1, 2, 3], &[]));
    }
    assert!(!nw.node(1).raft.trk.progress.contains_key(&4));
    nw.isolate(3);
    let sent = nw.trace.len();
    assert!(commits(&mut nw, 1), "two of three are a quorum");
    assert!(nw.trace[sent..].iter().all(|m| m.to != 4));

    // 4 is out of its own configuration: it never campaigns.
    nw.isolate(4);
    nw.tick(4, 50);
    assert_eq!(nw.state(4), StateType::Follower);
    assert!(
        nw.trace
            .iter()
            .all(|m| !(m.from == 4 && m.r#type() == MessageType::MsgVote))
    );
}

/// Voters 1 and 2, learner 3, with 1 leading.
fn cluster_with_learner_3() -> Network {
    let nodes = (1..=3)
        .map(|id| new_node_with(config(id, 10, 1), storage_with(&[1, 2], &[3])))
        .collect();
    let mut nw = Network::from_nodes(nodes);
    nw.campaign(1);
    assert_eq!(nw.state(1), StateType::Leader);
    nw
}

#[test]
fn learner_receives_the_log_but_is_not_asked_to_vote_nor_counted() {
    let mut nw = cluster_with_learner_3();
    assert!(
        nw.trace
            .iter()
            .all(|m| !(m.r#type() == MessageType::MsgVote && m.to == 3))
    );
    assert!(nw.node(3).raft.is_learner);

    nw.isolate(2);
    assert!(!commits(&mut nw, 1), "the learner's copy does not count");
    assert_eq!(last(&nw, 3), last(&nw, 1), "but it has the entry");
    assert_eq!(nw.node(1).raft.trk.progress[&3].matched, last(&nw, 1));
}

#[test]
fn learner_never_campaigns() {
    let mut nw = cluster_with_learner_3();
    nw.isolate(3);
    let term = nw.node(3).raft.term;

    nw.tick(3, 100);
    nw.campaign(3);

    assert_eq!(nw.state(3), StateType::Follower);
    assert_eq!(nw.node(3).raft.term, term);
    assert!(
        nw.trace.iter().all(|m| m.from != 3
            || !matches!(m.r#type(), MessageType::MsgVote | MessageType::MsgPreVote))
    );
}

#[test]
fn promoted_learner_counts_toward_the_quorum_and_can_lead() {
    let mut nw = cluster_with_learner_3();

    change(&mut nw, 1, cc(ConfChangeType::ConfChangeAddNode, 3));

    for id in [1, 2, 3] {
        assert_eq!(nw.node(id).raft.trk.conf_state(), conf(&[1, 2, 3], &[]));
    }
    assert!(!nw.node(3).raft.is_learner);
    nw.isolate(2);
    assert!(commits(&mut nw, 1), "1 and 3 are a quorum now");

    nw.recover();
    nw.isolate(1);
    nw.campaign(3);
    assert_eq!(nw.state(3), StateType::Leader);
}

#[test]
fn removed_leader_steps_down_when_step_down_on_removal_is_set() {
    let mut nw = Network::new_with_config(&[1, 2, 3], |c| c.step_down_on_removal = true);
    nw.campaign(1);

    change(&mut nw, 1, cc(ConfChangeType::ConfChangeRemoveNode, 1));

    assert_eq!(nw.state(1), StateType::Follower);
    for id in [1, 2, 3] {
        assert_eq!(nw.node(id).raft.trk.conf_state(), conf(&[2, 3], &[]));
    }
    // The remaining two elect a leader among themselves.
    nw.campaign(2);
    assert_eq!(nw.state(2), StateType::Leader);
    assert!(commits(&mut nw, 2));
}

#[test]
fn removed_leader_without_step_down_stays_leader_but_refuses_proposals() {
    let mut nw = Network::new(&[1, 2, 3]);
    nw.campaign(1);

    change(&mut nw, 1, cc(ConfChangeType::ConfChangeRemoveNode, 1));

    assert_eq!(nw.state(1), StateType::Leader);
    assert_eq!(
        nw.node_mut(1).propose("x".into()),
        Err(Error::ProposalDropped)
    );
}

#[test]
fn a_second_conf_change_is_refused_while_one_is_pending() {
    let mut nw = Network::new(&[1, 2, 3]);
    nw.campaign(1);
    nw.isolate(2);
    nw.isolate(3);

    change(&mut nw, 1, cc(ConfChangeType::ConfChangeAddLearnerNode, 4));
    change(&mut nw, 1, cc(ConfChangeType::ConfChangeAddLearnerNode, 5));

    // The second is appended as an empty normal entry: it will never apply.
    let ents = nw.node(1).raft.raft_log.all_entries();
    let [.., first, second] = ents.as_slice() else {
        panic!("two new entries");
    };
    assert_eq!(first.r#type(), EntryType::EntryConfChange);
    assert_eq!(second.r#type(), EntryType::EntryNormal);
    assert!(second.data.is_empty());

    nw.recover();
    nw.tick(1, 1);
    assert_eq!(committed(&nw, 1), last(&nw, 1));
    assert_eq!(nw.node(1).raft.trk.conf_state(), conf(&[1, 2, 3], &[4]));

    // Once the first is applied, another change is accepted.
    change(&mut nw, 1, cc(ConfChangeType::ConfChangeAddLearnerNode, 5));
    assert_eq!(nw.node(1).raft.trk.conf_state(), conf(&[1, 2, 3], &[4, 5]));
}

#[test]
fn a_learners_granted_vote_does_not_count() {
    let mut n = new_node_with(config(1, 10, 1), storage_with(&[1, 2, 3], &[4]));
    n.campaign().expect("campaign");
    let asked: Vec<u64> = read_messages(&mut n)
        .iter()
        .filter(|m| m.r#type() == MessageType::MsgVote)
        .map(|m| m.to)
        .collect();
    assert_eq!(asked, vec![2, 3], "learner 4 is not asked");

    n.raft
        .step(msg(MessageType::MsgVoteResp, 4, 1, 1))
        .expect("vote");
    assert_eq!(n.raft.state, StateType::Candidate, "1 and learner 4: no");
    n.raft
        .step(msg(MessageType::MsgVoteResp, 2, 1, 1))
        .expect("vote");
    assert_eq!(n.raft.state, StateType::Leader, "1 and 2 of three: yes");
}

fn v2(transition: ConfChangeTransition, changes: &[(ConfChangeType, u64)]) -> ConfChangeV2 {
    ConfChangeV2 {
        transition: transition as i32,
        changes: changes
            .iter()
            .map(|&(t, id)| ConfChangeSingle {
                r#type: t as i32,
                node_id: id,
            })
            .collect(),
        ..Default::default()
    }
}

// Replacing 3 by 4 through a joint configuration: while joint, an entry
// commits only with a majority of the old voters and one of the new.
#[test]
fn joint_configuration_commits_only_with_both_majorities() {
    // 4 knows the old configuration (it is not in it) and learns the rest
    // from the log.
    let nodes = (1..=4)
        .map(|id| new_node(id, &[1, 2, 3]))
        .collect::<Vec<_>>();
    let mut nw = Network::from_nodes(nodes);
    nw.campaign(1);

    let enter = v2(
        ConfChangeTransition::ConfChangeTransitionJointExplicit,
        &[
            (ConfChangeType::ConfChangeAddNode, 4),
            (ConfChangeType::ConfChangeRemoveNode, 3),
        ],
    );
    nw.node_mut(1)
        .propose_conf_change(&enter)
        .expect("enter joint");
    nw.flush();
    let joint = ConfState {
        voters: vec![1, 2, 4],
        voters_outgoing: vec![1, 2, 3],
        ..Default::default()
    };
    for id in [1, 2, 3, 4] {
        assert_eq!(nw.node(id).raft.trk.conf_state(), joint, "node {id}");
    }

    // {1, 4} is a majority of the new voters, {1, 3} of the old.
    nw.isolate(2);
    assert!(commits(&mut nw, 1));
    // {1, 4} and {1}: the old voters have no majority.
    nw.isolate(3);
    assert!(!commits(&mut nw, 1));
    nw.recover();
    nw.tick(1, 1);
    assert_eq!(committed(&nw, 1), last(&nw, 1));

    nw.node_mut(1)
        .propose_conf_change(&ConfChangeV2::default())
        .expect("leave joint");
    nw.flush();
    for id in [1, 2, 4] {
        assert_eq!(
            nw.node(id).raft.trk.conf_state(),
            conf(&[1, 2, 4], &[]),
            "node {id}"
        );
    }
    // 3 is out: 1 and 4 commit alone.
    nw.isolate(2);
    nw.isolate(3);
    assert!(commits(&mut nw, 1));
}

#[test]
fn leader_demoted_to_learner_steps_down_when_step_down_on_removal_is_set() {
    let mut nw = Network::new_with_config(&[1, 2, 3], |c| c.step_down_on_removal = true);
    nw.campaign(1);

    change(&mut nw, 1, cc(ConfChangeType::ConfChangeAddLearnerNode, 1));

    assert_eq!(nw.node(1).raft.trk.conf_state(), conf(&[2, 3], &[1]));
    assert!(nw.node(1).raft.is_learner);
    assert_eq!(nw.state(1), StateType::Follower);
}

// Without step_down_on_removal etcd keeps a demoted leader leading: it still
// has a progress entry, so it takes proposals, and the voters commit them.
#[test]
fn leader_demoted_to_learner_without_step_down_keeps_leading() {
    let mut nw = Network::new(&[1, 2, 3]);
    nw.campaign(1);

    change(&mut nw, 1, cc(ConfChangeType::ConfChangeAddLearnerNode, 1));

    assert!(nw.node(1).raft.is_learner);
    assert_eq!(nw.state(1), StateType::Leader);
    nw.isolate(3);
    assert!(!commits(&mut nw, 1), "1's copy no longer counts");
    nw.recover();
    nw.tick(1, 1);
    assert_eq!(committed(&nw, 1), last(&nw, 1), "2 and 3 commit it");
}

/// {1, 2, 3} led by 1, where 3 is cut off while its removal commits: it
/// does not know it was removed and campaigns once it times out.
fn removed_node_unaware_of_its_removal(pre_vote: bool) -> Network {
    let mut nw = Network::new_with_config(&[1, 2, 3], |c| c.pre_vote = pre_vote);
    nw.campaign(1);
    nw.isolate(3);
    change(&mut nw, 1, cc(ConfChangeType::ConfChangeRemoveNode, 3));
    assert_eq!(nw.node(1).raft.trk.conf_state(), conf(&[1, 2], &[]));
    assert_eq!(nw.node(3).raft.trk.conf_state(), conf(&[1, 2, 3], &[]));
    nw.recover();
    // 3 times out; its requests reach 1 and 2.
    let timeout = 2 * nw.node(3).raft.election_timeout;
    nw.tick(3, timeout);
    nw
}

// Without PreVote a removed node that missed its removal disrupts the
// cluster: its vote request of a higher term deposes the leader (as in
// etcd; CheckQuorum or PreVote prevent it).
#[test]
fn removed_node_unaware_of_its_removal_deposes_the_leader_without_pre_vote() {
    let nw = removed_node_unaware_of_its_removal(false);

    assert!(nw.node(3).raft.term > 1);
    assert_eq!(nw.node(1).raft.term, nw.node(3).raft.term);
    assert_ne!(nw.state(1), StateType::Leader);
}

// With PreVote it cannot: its log lacks the entry that removed it, so no one
// grants its pre-vote and it never raises its term.
#[test]
fn removed_node_unaware_of_its_removal_cannot_disrupt_with_pre_vote() {
    let nw = removed_node_unaware_of_its_removal(true);

    let refused_by: BTreeSet<u64> = nw
        .trace
        .iter()
        .filter(|m| m.to == 3 && m.r#type() == MessageType::MsgPreVoteResp && m.reject)
        .map(|m| m.from)
        .collect();
    assert_eq!(refused_by, BTreeSet::from([1, 2]));
    assert_eq!(nw.node(3).raft.term, 1, "never raised its term");
    assert_eq!(nw.state(3), StateType::Follower, "lost its pre-election");
    assert_eq!(nw.state(1), StateType::Leader);
    assert_eq!(nw.node(1).raft.term, 1);
}
