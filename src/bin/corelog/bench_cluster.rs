//! `corelog bench --local-cluster N`: the cluster the bench starts itself.
//! N `corelog server` processes from this very executable (so one `cargo
//! run` builds everything the bench needs) on free 127.0.0.1 ports, fresh
//! data directories under one temporary directory, fsync on as always.
//! Dropping `Servers` stops them (SIGTERM, then SIGKILL after 10 s) and
//! removes the directory. Also: waiting until every loaded group has a
//! leader, for local and existing clusters alike. With `--auth`, a secret
//! generated for the run that the members require.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use corelog::client::Client;

/// The running members; stopped and removed when dropped.
pub struct Servers {
    children: Vec<Child>,
    dir: PathBuf,
    /// The secret file the members require, if any.
    pub secret: Option<PathBuf>,
}

impl Drop for Servers {
    fn drop(&mut self) {
        for c in &mut self.children {
            // SAFETY: kill(2) of our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        }
        for c in &mut self.children {
            let deadline = Instant::now() + Duration::from_secs(10);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The first of `width` consecutive ports free right now on 127.0.0.1
/// (a member with `width` shards listens on `port .. port + width`).
fn free_range(width: u16, taken: &[u16]) -> Result<u16, String> {
    for _ in 0..200 {
        let first = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("free ports: {e}"))?;
        let p = first
            .local_addr()
            .map_err(|e| format!("free ports: {e}"))?
            .port();
        let Some(end) = p.checked_add(width) else {
            continue;
        };
        if (p..end).any(|q| taken.contains(&q)) {
            continue;
        }
        let rest: Vec<_> = (1..width)
            .map(|k| TcpListener::bind(("127.0.0.1", p + k)))
            .collect();
        if rest.iter().all(Result::is_ok) {
            return Ok(p);
        }
    }
    Err(format!("no {width} consecutive free ports on 127.0.0.1"))
}

/// Starts `n` members with `shards` shards each serving `groups` groups;
/// returns them and their client addresses once each says it serves.
/// With `generate`, the members require a secret made for the run (in
/// their directory, mode 0600); else with `secret`, that one.
pub fn start(
    n: u64,
    shards: u32,
    groups: u64,
    generate: bool,
    secret: Option<PathBuf>,
) -> Result<(Servers, Vec<SocketAddr>), String> {
    let exe = std::env::current_exe().map_err(|e| format!("own executable: {e}"))?;
    let dir = std::env::temp_dir().join(format!("corelog-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let width = u16::try_from(shards).map_err(|_| "--shards: too many".to_string())?;
    let mut taken = Vec::new();
    let mut peer = Vec::new();
    let mut client = Vec::new();
    for _ in 0..n {
        for list in [&mut peer, &mut client] {
            let p = free_range(width, &taken)?;
            taken.extend(p..p + width);
            list.push(SocketAddr::from(([127, 0, 0, 1], p)));
        }
    }
    let secret = if generate {
        Some(generate_secret(&dir)?)
    } else {
        secret
    };
    let mut servers = Servers {
        children: Vec::new(),
        dir: dir.clone(),
        secret: secret.clone(),
    };
    let (tx, rx) = mpsc::channel();
    for id in 1..=n {
        let mut cmd = Command::new(&exe);
        cmd.arg("server")
            .args(["--cluster-id", "1", "--cpus", "none"])
            .args(["--member-id", &id.to_string()])
            .args(["--groups", &groups.to_string()])
            .arg("--data-dir")
            .arg(dir.join(format!("m{id}")));
        if let Some(p) = &secret {
            cmd.arg("--auth-secret-file").arg(p);
        }
        for m in 1..=n {
            let k = (m - 1) as usize;
            cmd.arg("--member")
                .arg(format!("{m}=m{m}@{}/{}/{shards}", peer[k], client[k]));
        }
        // The servers' own messages (peers going away at the end, ...)
        // go to a file beside their data, shown if one fails to start.
        let log = std::fs::File::create(dir.join(format!("m{id}.log")))
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        // A process group of its own: a Ctrl-C at the terminal reaches
        // only the bench, which then stops the members itself after its
        // report (bench_interrupt.rs). And should the bench die without
        // stopping them (SIGKILL), the kernel sends them SIGTERM.
        cmd.process_group(0);
        // SAFETY: prctl(2) is async-signal-safe and touches nothing of
        // the parent's; the pre_exec closure allocates nothing.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("starting member {id}: {e}"))?;
        let out = child.stdout.take().ok_or("no stdout")?;
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut r = BufReader::new(out);
            let mut line = String::new();
            let _ = r.read_line(&mut line);
            let _ = tx.send(line);
            let mut sink = Vec::new();
            let _ = std::io::Read::read_to_end(&mut r, &mut sink);
        });
        servers.children.push(child);
    }
    for _ in 0..n {
        let why = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(l) if l.starts_with("corelog: serving:") => continue,
            Ok(_) => "a member did not start",
            Err(_) => "a member did not start within 20 s",
        };
        let logs: String = (1..=n)
            .map(|id| std::fs::read_to_string(dir.join(format!("m{id}.log"))).unwrap_or_default())
            .collect();
        return Err(format!("{why}:\n{logs}"));
    }
    Ok((servers, client))
}

/// A secret of 32 random bytes (64 hex characters) for this run, in a
/// file only this user can read.
fn generate_secret(dir: &Path) -> Result<PathBuf, String> {
    use std::io::{Read, Write};
    use std::os::unix::fs::OpenOptionsExt;
    let mut raw = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut raw))
        .map_err(|e| format!("random bytes for the secret: {e}"))?;
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let path = dir.join("auth-secret");
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut f| f.write_all(format!("{hex}\n").as_bytes()))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// Waits until each of groups `0..groups` has a leader (at most 20 s).
pub fn wait_for_leaders(client: &Client, groups: u64) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    for g in 0..groups {
        while client.group_status(g).map_or(true, |s| s.leader == 0) {
            if Instant::now() > deadline {
                return Err(format!("group {g} elected no leader in 20 s"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    Ok(())
}
