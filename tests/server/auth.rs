//! Authentication with a shared secret (`auth_secret_file`): on the client
//! port of an in-process member (every failure kind counted exactly), and
//! across three `corelog server` processes, one of them with another
//! secret, driven by the Rust client, the command line and `corelog
//! bench --auth`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use corelog::auth::AuthKey;
use corelog::auth::client_wire::{
    self, CHALLENGE_LEN, Hello, VERDICT_LEN, Verdict, client_proof, encode_proof,
};
use corelog::client::{Client, ClientError, ClientOptions};
use corelog::clientpb::error::Kind;

use super::support::*;

fn write_secret(dir: &Path, name: &str, fill: u8) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, format!("{}\n", (fill as char).to_string().repeat(48))).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

fn opts(auth: Option<AuthKey>) -> ClientOptions {
    ClientOptions {
        timeout: Duration::from_secs(10),
        auth,
        ..ClientOptions::default()
    }
}

fn unauthorized(r: Result<Client, ClientError>) -> String {
    match r {
        Err(ClientError::Unauthorized(why)) => why,
        Err(e) => panic!("expected Unauthorized, got {e}"),
        Ok(_) => panic!("expected Unauthorized, connected"),
    }
}

/// A raw connection that sent a hello and read the challenge.
fn hello(addr: SocketAddr, nonce: [u8; 32]) -> (TcpStream, [u8; 40], [u8; CHALLENGE_LEN]) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let h = Hello { nonce }.encode();
    s.write_all(&h).unwrap();
    let mut ch = [0u8; CHALLENGE_LEN];
    s.read_exact(&mut ch).unwrap();
    (s, h, ch)
}

fn verdict(s: &mut TcpStream) -> Verdict {
    let mut v = [0u8; VERDICT_LEN];
    s.read_exact(&mut v).unwrap();
    Verdict::decode(&v).unwrap()
}

#[test]
fn the_client_port_serves_only_clients_that_prove_the_secret_and_counts_each_failure() {
    let _g = serial();
    let d = tempfile::tempdir().unwrap();
    let good = write_secret(d.path(), "good", b'g');
    let bad = write_secret(d.path(), "bad", b'b');
    let key = AuthKey::load(&good).unwrap().key;
    let (_dir, srv) = solo_server(1, 2, |f| {
        f.auth_secret_file = Some(good.clone());
        f.limits.handshake_timeout_ms = Some(300);
    });
    let addr = srv.client_addrs()[0];
    assert!(srv.serving_line().contains("auth on"));

    // An authenticated client appends and reads back.
    let c = Client::connect(&[addr], opts(Some(key))).unwrap();
    let wrote = append_n(&c, 0, "auth", 5);
    let read: Vec<(u64, String)> = c
        .read(0, 0, 100, corelog::clientpb::Consistency::Linearizable)
        .unwrap()
        .records
        .into_iter()
        .map(|(o, b)| (o, String::from_utf8(b.to_vec()).unwrap()))
        .collect();
    assert_eq!(read, wrote);

    // No secret: the first request is answered Unauthorized.
    let why = unauthorized(Client::connect(&[addr], opts(None)));
    assert!(why.contains("requires authentication"), "{why}");
    // The same, raw: a typed answer under the frame's id, then closed.
    let mut s = TcpStream::connect(addr).unwrap();
    let kind = error_kind(raw_call(&mut s, 42, &cluster_status_req()));
    assert!(matches!(kind, Kind::Unauthorized(_)), "{kind:?}");
    assert!(closed_by_server(&mut s));

    // Another secret: our proof is refused.
    let other = AuthKey::load(&bad).unwrap().key;
    let why = unauthorized(Client::connect(&[addr], opts(Some(other))));
    assert!(why.contains("refused our proof"), "{why}");

    // A proof recorded from an accepted handshake, replayed with the same
    // hello: the server's nonce is new, the proof stale.
    let nonce = [0x3c; 32];
    let (mut s, h, ch) = hello(addr, nonce);
    let recorded = client_proof(&key, &h, &ch);
    s.write_all(&encode_proof(&recorded)).unwrap();
    let Verdict::Accepted(p) = verdict(&mut s) else {
        panic!("an honest proof was refused");
    };
    assert!(client_wire::check_server_proof(&key, &h, &ch, &p));
    let (mut s2, h2, ch2) = hello(addr, nonce);
    assert_eq!(h2, h);
    assert_ne!(ch2, ch, "a fresh server nonce");
    s2.write_all(&encode_proof(&recorded)).unwrap();
    assert_eq!(verdict(&mut s2), Verdict::Refused);
    assert!(closed_by_server(&mut s2));
    // The server's proof reflected back as ours.
    let (mut s3, _, _) = hello(addr, [0x4d; 32]);
    s3.write_all(&encode_proof(&p)).unwrap();
    assert_eq!(verdict(&mut s3), Verdict::Refused);

    // Garbage (a megabyte) and a frame header announcing 4 GiB: closed,
    // nothing answered.
    let mut s = TcpStream::connect(addr).unwrap();
    let _ = s.write_all(&vec![0xff; 1 << 20]);
    assert!(closed_by_server(&mut s));
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0])
        .unwrap();
    assert!(closed_by_server(&mut s));
    // A hello of another version.
    let mut s = TcpStream::connect(addr).unwrap();
    let mut v2 = Hello { nonce }.encode();
    v2[4] = 9;
    s.write_all(&v2).unwrap();
    assert!(closed_by_server(&mut s));
    // Too slow: half a hello, then nothing.
    let mut s = TcpStream::connect(addr).unwrap();
    s.write_all(&Hello { nonce }.encode()[..20]).unwrap();
    assert!(closed_by_server(&mut s));

    // The authenticated client was never disturbed.
    append_n(&c, 0, "after", 2);
    let st = srv.stats()[0];
    // The client's own connection, the recorded handshake.
    assert_eq!(st.auth_accepted, 2, "{st:?}");
    assert_eq!(st.auth_unauthenticated, 2, "{st:?}");
    // Another secret, the replay, the reflection.
    assert_eq!(st.auth_bad_proof, 3, "{st:?}");
    // Garbage, 4 GiB, another version.
    assert_eq!(st.auth_malformed, 3, "{st:?}");
    assert_eq!(st.auth_timeout, 1, "{st:?}");
    srv.stop(Duration::from_secs(2)).unwrap();
}

#[test]
fn a_cluster_with_the_secret_serves_and_refuses_a_member_with_another() {
    let _g = serial();
    let d = tempfile::tempdir().unwrap();
    let good = write_secret(d.path(), "good", b'g');
    let bad = write_secret(d.path(), "bad", b'b');
    let key = AuthKey::load(&good).unwrap().key;
    let metrics = free_ports(1)[0];
    let mut t = Three::new(2);
    for (k, secret) in [&good, &good, &bad].iter().enumerate() {
        t.extra[k] = vec!["--auth-secret-file".into(), secret.to_str().unwrap().into()];
    }
    t.extra[0].extend(["--metrics-addr".into(), format!("127.0.0.1:{metrics}")]);
    t.start_all();

    // Members 1 and 2 are a quorum: the cluster takes appends.
    let c = Client::connect(&t.clients[..2], opts(Some(key))).unwrap();
    for g in 0..2 {
        let wrote = append_n(&c, g, "q", 3);
        assert_eq!(wrote.len(), 3);
        let leader = t.leader(&c, g);
        assert_ne!(leader, 3, "member 3 cannot lead: it reaches no one");
    }
    // Member 3 (another secret) was refused by member 1, and refused it.
    let m = SocketAddr::from(([127, 0, 0, 1], metrics));
    assert!(
        eventually(|| {
            let text = scrape(m);
            metric(
                &text,
                "corelog_peer_handshakes_refused_total",
                "shard=\"0\",kind=\"auth_bad_proof\"",
            )
            .unwrap_or(0)
                >= 1
                && metric(&text, "corelog_peer_auth_failures_total", "shard=\"0\"").unwrap_or(0)
                    >= 1
        }),
        "{}",
        scrape(m)
    );
    // A client without the secret is refused and counted.
    let why = unauthorized(Client::connect(&t.clients[..1], opts(None)));
    assert!(why.contains("requires authentication"), "{why}");
    let text = scrape(m);
    assert!(
        metric(
            &text,
            "corelog_client_auth_total",
            "shard=\"0\",kind=\"unauthenticated\""
        )
        .unwrap()
            >= 1,
        "{text}"
    );
    assert!(
        metric(
            &text,
            "corelog_client_auth_total",
            "shard=\"0\",kind=\"accepted\""
        )
        .unwrap()
            >= 1
    );

    // The command line: with the secret it answers, without it says why.
    let server = t.clients[0].to_string();
    let ok = Command::new(bin())
        .args(["status", "-s", &server, "--auth-secret-file"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(ok.status.success(), "{ok:?}");
    let no = Command::new(bin())
        .args(["status", "-s", &server])
        .output()
        .unwrap();
    assert!(!no.status.success());
    let err = String::from_utf8_lossy(&no.stderr);
    assert!(err.contains("unauthorized"), "{err}");
}

#[test]
fn bench_runs_a_local_cluster_with_a_generated_secret() {
    let _g = serial();
    let out = Command::new(bin())
        .args([
            "bench",
            "--local-cluster",
            "1",
            "--auth",
            "--groups",
            "1",
            "--connections",
            "1",
            "--seconds",
            "0.5",
            "--warmup",
            "0",
            "--quiet",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(r["requests"].as_u64().unwrap_or(0) > 0, "{r}");
    assert_eq!(r["errors_total"].as_u64(), Some(0), "{r}");
}

#[test]
fn a_secret_below_32_bytes_is_refused_at_startup_naming_the_field() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("short");
    std::fs::write(&p, "too short\n").unwrap();
    let f = corelog::server::FileConfig {
        auth_secret_file: Some(p),
        ..corelog::server::FileConfig::default()
    };
    let mut f = f;
    f.cluster_id = Some(1);
    f.member_id = Some(1);
    f.data_dir = Some(d.path().to_path_buf());
    f.members.push(corelog::server::config::MemberEntry {
        id: 1,
        name: "a".into(),
        peer_addr: "127.0.0.1:1".parse().unwrap(),
        client_addr: "127.0.0.1:2".parse().unwrap(),
        shards: 1,
    });
    let e = f.check().unwrap_err();
    assert_eq!(e.field, "auth_secret_file");
    assert!(e.reason.contains("fewer than the 32"), "{e}");
}
