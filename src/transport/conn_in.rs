//! The inbound side of one shard: the accept loop on its peer port and,
//! per accepted connection, the task that checks the peer's handshake,
//! answers it, then reads frames and hands their messages to the shard's
//! `Inbox`.
//!
//! What closes a connection (that one only, counted in `NetStats`, never
//! a panic): a handshake that is refused (another cluster, an unknown
//! member or shard, another version, not a handshake; with a secret, a
//! dialler without one or with a wrong proof; without, a dialler that
//! offers the exchange) or late (the whole exchange is bounded by
//! `handshake_timeout`); a frame
//! header whose length is above `max_frame_bytes` (refused before
//! anything is reserved for it); a crc mismatch; a payload the decoder
//! refuses. A frame is delivered all or nothing: a refused message drops
//! its whole frame. Messages of an accepted frame that are not for this
//! shard (`to` another member, `from` another member than the handshake's,
//! a group that does not live on this shard) are dropped one by one and
//! counted; the connection stays.

use std::io;
use std::rc::Rc;

use bytes::BytesMut;
use futures_lite::future::or;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};

use super::accept;
use super::handshake::{HANDSHAKE_LEN, Handshake, check_auth};
use super::inbox::Inbox;
use super::net::{Shared, TaskGuard};
use super::peer_auth::Transcript;
use super::reader::FrameReader;
use super::sock::read_some;
use super::{Error, FRAME_HEADER_LEN};
use crate::auth::{NONCE_LEN, PROOF_LEN, nonce};

/// Accepts connections until shutdown; each gets a task of its own.
pub(crate) async fn accept_loop(
    net: Rc<Shared>,
    listener: TcpListener,
    inbox: Inbox,
    _guard: TaskGuard,
) {
    let failed = |e: &io::Error| {
        tracing::error!(
            member = net.cfg.member,
            shard = net.cfg.shard,
            error = %e,
            "peer accept failed"
        );
    };
    while let Some(stream) = accept::next(&listener, || net.shutdown.wait(), failed).await {
        if net.inbound.get() >= net.opts.max_inbound_connections {
            net.stats.bump(|s| s.refused_too_many_connections += 1);
            drop(stream);
            continue;
        }
        net.inbound.set(net.inbound.get() + 1);
        let guard = net.task_guard();
        let net2 = net.clone();
        let inbox = inbox.clone();
        glommio::spawn_local(async move {
            let _guard = guard;
            let why = or(serve(&net2, stream, &inbox), async {
                net2.shutdown.wait().await;
                Closed::Shutdown
            })
            .await;
            net2.inbound.set(net2.inbound.get() - 1);
            net2.stats.bump(|s| s.inbound_closed += 1);
            match why {
                Closed::Refused(e) => tracing::warn!(
                    member = net2.cfg.member,
                    shard = net2.cfg.shard,
                    error = %e,
                    "closed an inbound peer connection"
                ),
                Closed::Timeout => tracing::warn!(
                    member = net2.cfg.member,
                    shard = net2.cfg.shard,
                    "closed an inbound peer connection: no complete handshake in time"
                ),
                Closed::Eof | Closed::Shutdown => {}
            }
        })
        .detach();
    }
    // The listener closes here: nobody accepts on this port any more.
    drop(listener);
}

/// Why an inbound connection ended.
enum Closed {
    /// The peer closed it, or a socket error.
    Eof,
    /// Its handshake or a frame was refused (already counted).
    Refused(Error),
    Timeout,
    Shutdown,
}

async fn serve(net: &Shared, mut stream: TcpStream, inbox: &Inbox) -> Closed {
    // The whole handshake, the shared-secret exchange included, within
    // one timeout: a slow peer holds a connection slot that long at most.
    let shaken = or(handshake(net, &mut stream), async {
        glommio::timer::sleep(net.opts.handshake_timeout).await;
        Err(Closed::Timeout)
    })
    .await;
    let hello = match shaken {
        Ok(h) => h,
        Err(Closed::Timeout) => {
            net.stats.bump(|s| s.refused_handshake_timeout += 1);
            return Closed::Timeout;
        }
        Err(c) => return c,
    };
    net.stats.bump(|s| s.accepted += 1);
    let _ = stream.set_nodelay(true);
    read_frames(net, &stream, inbox, hello.from_member).await
}

/// Reads `buf.len()` bytes unless the stream ends first; returns how many
/// came.
async fn read_full(stream: &mut TcpStream, buf: &mut [u8]) -> Result<usize, Closed> {
    let mut got = 0;
    while got < buf.len() {
        match stream.read(&mut buf[got..]).await {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(_) => return Err(Closed::Eof),
        }
    }
    Ok(got)
}

/// Counts and returns a refusal.
fn refuse(net: &Shared, e: Error) -> Closed {
    // The handshake has no refusal field: closing is the answer.
    net.stats.refused(&e);
    Closed::Refused(e)
}

/// Reads and checks the dialler's handshake, answers it, and, with a
/// secret, runs the exchange: the dialler's proof checked before ours is
/// sent. Returns the dialler's handshake once frames may flow.
async fn handshake(net: &Shared, stream: &mut TcpStream) -> Result<Handshake, Closed> {
    let mut buf = [0u8; HANDSHAKE_LEN];
    let got = read_full(stream, &mut buf).await?;
    net.stats.bump(|s| s.bytes_received += got as u64);
    if got < HANDSHAKE_LEN {
        // The end of the stream before 44 bytes: not a handshake.
        return Err(refuse(
            net,
            Error::Truncated {
                what: "handshake",
                needed: HANDSHAKE_LEN as u64,
                available: got as u64,
            },
        ));
    }
    let checked = Handshake::decode(&buf).and_then(|h| {
        h.validate(&net.cfg.cluster, net.cfg.member)?;
        if h.to_shard != net.cfg.shard {
            return Err(Error::WrongShard {
                ours: net.cfg.shard,
                theirs: h.to_shard,
            });
        }
        check_auth(net.opts.auth.is_some(), h.auth)?;
        Ok(h)
    });
    let hello = checked.map_err(|e| refuse(net, e))?;
    // The reply is the same connection seen from our end.
    let reply = hello.reply().encode();
    let Some(key) = net.opts.auth else {
        // Only now may the dialler send frames.
        stream.write_all(&reply).await.map_err(|_| Closed::Eof)?;
        return Ok(hello);
    };
    let mut nd = [0u8; NONCE_LEN];
    let got = read_full(stream, &mut nd).await?;
    net.stats.bump(|s| s.bytes_received += got as u64);
    if got < NONCE_LEN {
        return Err(refuse(
            net,
            Error::Truncated {
                what: "auth nonce",
                needed: NONCE_LEN as u64,
                available: got as u64,
            },
        ));
    }
    let na = nonce().map_err(|e| {
        tracing::error!(error = %e, "no randomness from the OS for a peer handshake");
        Closed::Eof
    })?;
    let mut out = [0u8; HANDSHAKE_LEN + NONCE_LEN];
    out[..HANDSHAKE_LEN].copy_from_slice(&reply);
    out[HANDSHAKE_LEN..].copy_from_slice(&na);
    stream.write_all(&out).await.map_err(|_| Closed::Eof)?;
    let mut proof = [0u8; PROOF_LEN];
    let got = read_full(stream, &mut proof).await?;
    net.stats.bump(|s| s.bytes_received += got as u64);
    let t = Transcript {
        hello: &buf,
        dialler_nonce: &nd,
        reply: &reply,
        acceptor_nonce: &na,
    };
    // A dialler that closes instead of proving is counted with the wrong
    // proofs: it did not show the secret.
    if got < PROOF_LEN || !t.check_dialler(&key, &proof) {
        return Err(refuse(net, Error::BadProof { from: "dialler" }));
    }
    // Only now may the dialler send frames.
    stream
        .write_all(&t.acceptor_proof(&key))
        .await
        .map_err(|_| Closed::Eof)?;
    Ok(hello)
}

/// Reads frames until the peer closes or sends something refused.
async fn read_frames(net: &Shared, stream: &TcpStream, inbox: &Inbox, from: u64) -> Closed {
    let chunk = net.opts.read_buffer_bytes.max(FRAME_HEADER_LEN);
    // Read into at least a quarter chunk, so a nearly full buffer does not
    // turn into many small reads.
    let min_room = (chunk / 4).max(FRAME_HEADER_LEN);
    let mut buf = BytesMut::with_capacity(chunk);
    let mut reader = FrameReader::new(
        net.cfg.limits,
        net.cfg.member,
        net.cfg.shard,
        net.local.shards,
        from,
    )
    .with_snapshot_limits(
        net.opts.max_snapshot_bytes,
        net.opts.max_snapshot_bytes_total,
        net.snapshot_bytes.clone(),
    );
    loop {
        if let Err(e) = reader.deliver(&mut buf, &net.stats, inbox) {
            return Closed::Refused(e);
        }
        // `split_frame` has reserved the rest of a frame it has the
        // header of; beyond that, a quarter chunk at least.
        match read_some(stream, &mut buf, min_room, chunk).await {
            Ok(0) | Err(_) => return Closed::Eof,
            Ok(n) => net.stats.bump(|s| s.bytes_received += n as u64),
        }
    }
}
