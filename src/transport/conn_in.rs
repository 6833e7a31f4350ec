//! The inbound side of one shard: the accept loop on its peer port and,
//! per accepted connection, the task that checks the peer's handshake,
//! answers it, then reads frames and hands their messages to the shard's
//! `Inbox`.
//!
//! What closes a connection (that one only, counted in `NetStats`, never
//! a panic): a handshake that is refused (another cluster, an unknown
//! member or shard, another version, not a handshake) or late; a frame
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
use super::handshake::{HANDSHAKE_LEN, Handshake};
use super::inbox::Inbox;
use super::net::{Shared, TaskGuard};
use super::reader::FrameReader;
use super::sock::read_some;
use super::{Error, FRAME_HEADER_LEN};

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
            if let Closed::Refused(e) = why {
                tracing::warn!(
                    member = net2.cfg.member,
                    shard = net2.cfg.shard,
                    error = %e,
                    "closed an inbound peer connection"
                );
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
    let hello = match read_handshake(net, &mut stream).await {
        Ok(h) => h,
        Err(c) => return c,
    };
    // The reply is the same connection seen from our end; only now may the
    // dialler send frames.
    if stream.write_all(&hello.reply().encode()).await.is_err() {
        return Closed::Eof;
    }
    net.stats.bump(|s| s.accepted += 1);
    let _ = stream.set_nodelay(true);
    read_frames(net, &stream, inbox, hello.from_member).await
}

async fn read_handshake(net: &Shared, stream: &mut TcpStream) -> Result<Handshake, Closed> {
    let mut buf = [0u8; HANDSHAKE_LEN];
    let mut got = 0;
    let read = or(
        async {
            while got < HANDSHAKE_LEN {
                match stream.read(&mut buf[got..]).await {
                    Ok(0) => return Ok(false),
                    Ok(n) => got += n,
                    Err(e) => return Err(e),
                }
            }
            Ok(true)
        },
        async {
            glommio::timer::sleep(net.opts.handshake_timeout).await;
            Err(io::Error::from(io::ErrorKind::TimedOut))
        },
    )
    .await;
    match read {
        Ok(true) => {}
        Ok(false) => {
            // The end of the stream before 44 bytes: not a handshake.
            let e = Error::Truncated {
                what: "handshake",
                needed: HANDSHAKE_LEN as u64,
                available: got as u64,
            };
            net.stats.refused(&e);
            return Err(Closed::Refused(e));
        }
        Err(e) if e.kind() == io::ErrorKind::TimedOut => {
            net.stats.bump(|s| s.refused_handshake_timeout += 1);
            return Err(Closed::Timeout);
        }
        Err(_) => return Err(Closed::Eof),
    }
    net.stats.bump(|s| s.bytes_received += HANDSHAKE_LEN as u64);
    let checked = Handshake::decode(&buf).and_then(|h| {
        h.validate(&net.cfg.cluster, net.cfg.member)?;
        if h.to_shard != net.cfg.shard {
            return Err(Error::WrongShard {
                ours: net.cfg.shard,
                theirs: h.to_shard,
            });
        }
        Ok(h)
    });
    checked.map_err(|e| {
        // The handshake has no refusal field: closing is the answer.
        net.stats.refused(&e);
        Closed::Refused(e)
    })
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
