//! Leadership transfer (MsgTransferLeader, MsgTimeoutNow): no interaction
//! scenario file exercises it, so these cover etcd's rules end to end: an
//! up-to-date target is told to campaign at once, a lagging one is caught
//! up first, a transfer that does not finish within an election timeout is
//! abandoned, proposals are refused meanwhile, and transfers to oneself, to
//! unknown nodes or to learners are ignored.

mod common;

use common::network::*;
use corelog::raft::{Error, StateType};
use corelog::raftpb::{Message, MessageType};

/// A cluster of `ids` with node 1 elected leader (term 1).
fn cluster_led_by_1(ids: &[u64]) -> Network {
    let mut nw = Network::new(ids);
    nw.campaign(1);
    assert_eq!(nw.state(1), StateType::Leader);
    nw
}

fn count(nw: &Network, t: MessageType, to: u64) -> usize {
    nw.trace
        .iter()
        .filter(|m| m.r#type() == t && m.to == to)
        .count()
}

/// Asks node `at` to transfer leadership to `to` and delivers the outcome.
fn transfer(nw: &mut Network, at: u64, to: u64) {
    nw.node_mut(at).transfer_leader(to);
    nw.flush();
}

fn assert_led_by(nw: &Network, lead: u64, term: u64) {
    for (&id, n) in &nw.peers {
        let want = if id == lead {
            StateType::Leader
        } else {
            StateType::Follower
        };
        assert_eq!(n.raft.state, want, "node {id}");
        assert_eq!(n.raft.lead, lead, "node {id}");
        assert_eq!(n.raft.term, term, "node {id}");
    }
}

#[test]
fn transfer_to_an_up_to_date_follower_makes_it_leader_at_once() {
    let mut nw = cluster_led_by_1(&[1, 2, 3]);

    transfer(&mut nw, 1, 2);

    assert_eq!(count(&nw, MessageType::MsgTimeoutNow, 2), 1);
    assert_led_by(&nw, 2, 2);
    assert_eq!(nw.node(1).raft.lead_transferee, 0);
    // And back again.
    transfer(&mut nw, 2, 1);
    assert_led_by(&nw, 1, 3);
}

#[test]
fn transfer_requested_at_a_follower_is_forwarded_to_the_leader() {
    let mut nw = cluster_led_by_1(&[1, 2, 3]);

    transfer(&mut nw, 2, 2);

    assert_eq!(count(&nw, MessageType::MsgTransferLeader, 1), 1);
    assert_led_by(&nw, 2, 2);
}

#[test]
fn transfer_breaks_through_leader_leases_under_check_quorum() {
    let mut nw = Network::new_with_config(&[1, 2, 3], |c| c.check_quorum = true);
    // Under CheckQuorum a follower refuses votes while it heard from its
    // leader within the election timeout; let node 1 win after 2 and 3
    // have waited long enough.
    for id in [2, 3] {
        for _ in 0..nw.node(id).raft.election_timeout {
            nw.node_mut(id).tick();
        }
    }
    nw.campaign(1);
    assert_eq!(nw.state(1), StateType::Leader);

    transfer(&mut nw, 1, 3);

    assert_led_by(&nw, 3, 2);
}

#[test]
fn transfer_to_a_lagging_follower_waits_until_it_has_caught_up() {
    let mut nw = cluster_led_by_1(&[1, 2, 3]);
    nw.isolate(3);
    nw.propose(1, b"a");
    nw.propose(1, b"b");
    nw.recover();

    nw.node_mut(1).transfer_leader(3);
    assert_eq!(nw.node(1).raft.lead_transferee, 3);
    let first = read_messages(nw.node_mut(1));
    assert!(
        first
            .iter()
            .all(|m| m.r#type() != MessageType::MsgTimeoutNow),
        "a lagging target is not told to campaign yet: {first:?}"
    );
    assert!(
        first
            .iter()
            .any(|m| m.r#type() == MessageType::MsgApp && m.to == 3)
    );
    nw.send(first);

    // The MsgTimeoutNow went out only once 3 acknowledged the last entry.
    let last = 3;
    let caught_up = nw
        .trace
        .iter()
        .position(|m| m.r#type() == MessageType::MsgAppResp && m.from == 3 && m.index == last)
        .expect("3 caught up");
    let timeout_now = nw
        .trace
        .iter()
        .position(|m| m.r#type() == MessageType::MsgTimeoutNow)
        .expect("timeout now sent");
    assert!(caught_up < timeout_now);
    assert_led_by(&nw, 3, 2);
    assert_eq!(nw.node(3).raft.raft_log.last_index(), 4);
}

#[test]
fn transfer_is_abandoned_after_an_election_timeout() {
    let mut nw = cluster_led_by_1(&[1, 2, 3]);
    nw.isolate(3);
    nw.propose(1, b"a");

    transfer(&mut nw, 1, 3);
    assert_eq!(nw.node(1).raft.lead_transferee, 3);

    let et = nw.node(1).raft.election_timeout;
    nw.tick(1, et - 1);
    assert_eq!(nw.node(1).raft.lead_transferee, 3, "still trying");
    nw.tick(1, 1);
    assert_eq!(nw.node(1).raft.lead_transferee, 0, "abandoned");
    assert_eq!(nw.state(1), StateType::Leader);
    assert_eq!(count(&nw, MessageType::MsgTimeoutNow, 3), 0);
}

#[test]
fn proposals_are_refused_while_a_transfer_is_in_progress() {
    let mut nw = cluster_led_by_1(&[1, 2, 3]);
    nw.isolate(3);
    transfer(&mut nw, 1, 3);
    let last = nw.node(1).raft.raft_log.last_index();

    assert_eq!(
        nw.node_mut(1).propose("x".into()),
        Err(Error::ProposalDropped)
    );
    assert_eq!(nw.node(1).raft.raft_log.last_index(), last);

    // Once the transfer is abandoned, proposals are taken again.
    let et = nw.node(1).raft.election_timeout;
    nw.tick(1, et);
    nw.node_mut(1).propose("x".into()).expect("proposal");
}

#[test]
fn transfer_to_self_unknown_or_learner_is_ignored() {
    let ids = [1, 2, 3];
    let nodes = (1..=4)
        .map(|id| new_node_with(config(id, 10, 1), storage_with(&ids, &[4])))
        .collect();
    let mut nw = Network::from_nodes(nodes);
    nw.campaign(1);
    assert_eq!(nw.state(1), StateType::Leader);

    for target in [1, 9, 4] {
        let sent = nw.trace.len();
        transfer(&mut nw, 1, target);
        assert_eq!(nw.node(1).raft.lead_transferee, 0, "to {target}");
        assert_eq!(nw.trace.len(), sent, "to {target}: nothing sent");
        assert_eq!(nw.state(1), StateType::Leader);
        nw.node_mut(1)
            .propose("x".into())
            .unwrap_or_else(|e| panic!("to {target}: proposals still taken: {e}"));
        nw.flush();
    }
}

#[test]
fn a_second_transfer_to_the_same_node_keeps_the_first_deadline() {
    let mut nw = cluster_led_by_1(&[1, 2, 3]);
    nw.isolate(3);
    transfer(&mut nw, 1, 3);
    let et = nw.node(1).raft.election_timeout;
    nw.tick(1, et - 1);

    transfer(&mut nw, 1, 3);
    nw.tick(1, 1);

    assert_eq!(nw.node(1).raft.lead_transferee, 0, "not restarted");
}

#[test]
fn a_transfer_to_another_node_replaces_the_pending_one() {
    let mut nw = cluster_led_by_1(&[1, 2, 3]);
    nw.isolate(3);
    transfer(&mut nw, 1, 3);
    assert_eq!(nw.node(1).raft.lead_transferee, 3);

    transfer(&mut nw, 1, 2);

    // 3 is still cut off; 1 and 2 follow the new transfer.
    assert_eq!(nw.state(2), StateType::Leader);
    assert_eq!(nw.node(2).raft.term, 2);
    assert_eq!(nw.state(1), StateType::Follower);
    assert_eq!(nw.node(1).raft.lead, 2);
    assert_eq!(count(&nw, MessageType::MsgTimeoutNow, 3), 0);
}

#[test]
fn a_vote_of_a_higher_term_ends_the_transfer_and_the_leadership() {
    let mut nw = cluster_led_by_1(&[1, 2, 3]);
    nw.isolate(3);
    transfer(&mut nw, 1, 3);

    nw.send(vec![Message {
        index: 1,
        log_term: 1,
        ..msg(MessageType::MsgVote, 2, 1, 2)
    }]);

    let n = nw.node(1);
    assert_eq!(n.raft.state, StateType::Follower);
    assert_eq!(n.raft.term, 2);
    assert_eq!(n.raft.lead_transferee, 0);
}

#[test]
fn removing_the_transferee_abandons_the_transfer() {
    let mut nw = cluster_led_by_1(&[1, 2, 3]);
    // The removal of 3 is appended but cannot commit yet...
    nw.isolate(2);
    nw.isolate(3);
    let remove_3 = corelog::raftpb::ConfChange {
        r#type: corelog::raftpb::ConfChangeType::ConfChangeRemoveNode as i32,
        node_id: 3,
        ..Default::default()
    };
    nw.node_mut(1)
        .propose_conf_change(&remove_3)
        .expect("proposal");
    nw.flush();
    // ...when a transfer to 3 starts (3 lags: it gets appends first).
    transfer(&mut nw, 1, 3);
    assert_eq!(nw.node(1).raft.lead_transferee, 3);

    // 2 comes back; the removal commits and applies.
    nw.recover();
    nw.isolate(3);
    nw.tick(1, 1);

    assert_eq!(nw.node(1).raft.trk.conf_state().voters, vec![1, 2]);
    assert_eq!(nw.node(1).raft.lead_transferee, 0);
    assert_eq!(nw.state(1), StateType::Leader);
    nw.node_mut(1).propose("x".into()).expect("proposal");
}

#[test]
fn transfer_skips_the_pre_vote_phase() {
    let mut nw = Network::new_with_config(&[1, 2, 3], |c| c.pre_vote = true);
    nw.campaign(1);
    assert_eq!(nw.state(1), StateType::Leader);
    let sent = nw.trace.len();

    transfer(&mut nw, 1, 2);

    assert_led_by(&nw, 2, 2);
    let types: Vec<MessageType> = nw.trace[sent..].iter().map(|m| m.r#type()).collect();
    assert!(types.contains(&MessageType::MsgVote));
    assert!(!types.contains(&MessageType::MsgPreVote), "{types:?}");
}
