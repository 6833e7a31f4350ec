//! The cluster under test: `corelog server` processes on 127.0.0.1, one
//! shard each, and a fault proxy on every directed peer link. Member `i`'s
//! member list names, for every other member `j`, the proxy of link
//! `i -> j` as `j`'s peer address, so each link can be cut alone (a one-way
//! partition cuts `i -> j` and leaves `j -> i`). Clients reach members
//! directly.

use std::collections::BTreeMap;
use std::fs::File;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::disk::Disk;
use crate::proxy::{Fault, Proxy};

/// How to start the members.
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    /// The `corelog` executable.
    pub binary: PathBuf,
    pub members: u64,
    pub groups: u64,
    /// Where data directories and logs go (removed by the caller).
    pub dir: PathBuf,
    pub tick_ms: u64,
    pub election_ticks: u64,
    /// Each member's data on a tmpfs of its own (`Disk`), which the
    /// nemesis can fill. The caller has entered a private mount namespace.
    pub own_disks: bool,
}

struct Member {
    peer: SocketAddr,
    client: SocketAddr,
    data: PathBuf,
    /// The member's own file system (`ClusterSpec::own_disks`).
    disk: Option<Disk>,
    child: Option<Child>,
    paused: bool,
    /// Starts so far (names each life's log file).
    lives: u32,
}

pub struct Cluster {
    spec: ClusterSpec,
    members: BTreeMap<u64, Member>,
    /// `(from, to)` -> the proxy `from` dials to reach `to`.
    links: BTreeMap<(u64, u64), Proxy>,
}

/// A free port, held (bound) until the caller drops the listener: the
/// members' ports are held while the proxies bind theirs, so no proxy
/// takes one. Released just before the members start, a race with another
/// process remains possible but rare; a member that cannot bind exits and
/// says so in its log.
fn free_addr(held: &mut Vec<TcpListener>) -> io::Result<SocketAddr> {
    let l = TcpListener::bind("127.0.0.1:0")?;
    let a = l.local_addr()?;
    held.push(l);
    Ok(a)
}

impl Cluster {
    /// Picks addresses, starts every proxy and every member (together, as
    /// a new cluster bootstraps), and waits for each to serve.
    pub fn start(spec: ClusterSpec) -> io::Result<Cluster> {
        let mut members = BTreeMap::new();
        let mut held = Vec::new();
        for id in 1..=spec.members {
            let (data, disk) = if spec.own_disks {
                let disk = Disk::mount(&spec.dir.join(format!("m{id}.disk")))?;
                (disk.data_dir(), Some(disk))
            } else {
                (spec.dir.join(format!("m{id}")), None)
            };
            members.insert(
                id,
                Member {
                    peer: free_addr(&mut held)?,
                    client: free_addr(&mut held)?,
                    data,
                    disk,
                    child: None,
                    paused: false,
                    lives: 0,
                },
            );
        }
        let mut links = BTreeMap::new();
        for &from in members.keys() {
            for (&to, m) in &members {
                if from != to {
                    links.insert((from, to), Proxy::start(m.peer)?);
                }
            }
        }
        let mut c = Cluster {
            spec,
            members,
            links,
        };
        let ids: Vec<u64> = c.members.keys().copied().collect();
        drop(held);
        for &id in &ids {
            c.spawn(id)?;
        }
        for &id in &ids {
            c.wait_serving(id, Duration::from_secs(30))?;
        }
        Ok(c)
    }

    pub fn ids(&self) -> Vec<u64> {
        self.members.keys().copied().collect()
    }

    pub fn client_addrs(&self) -> Vec<SocketAddr> {
        self.members.values().map(|m| m.client).collect()
    }

    pub fn client_addr(&self, id: u64) -> SocketAddr {
        self.members[&id].client
    }

    fn args(&self, id: u64) -> Vec<String> {
        let s = &self.spec;
        let mut a: Vec<String> = vec![
            "server".into(),
            "--cluster-id".into(),
            "4242".into(),
            "--member-id".into(),
            id.to_string(),
            "--data-dir".into(),
            self.members[&id].data.display().to_string(),
            "--groups".into(),
            s.groups.to_string(),
            "--replication-factor".into(),
            s.members.min(3).to_string(),
            "--cpus".into(),
            "none".into(),
            "--tick-ms".into(),
            s.tick_ms.to_string(),
            "--election-ticks".into(),
            s.election_ticks.to_string(),
            "--request-timeout-ms".into(),
            "4000".into(),
        ];
        for (&j, m) in &self.members {
            let peer = if j == id {
                m.peer
            } else {
                self.links[&(id, j)].addr()
            };
            a.push("--member".into());
            a.push(format!("{j}=m{j}@{peer}/{}", m.client));
        }
        if s.own_disks {
            // Small segments: a full disk is met at the next segment,
            // within a fault's hold.
            a.push("--wal-segment-bytes".into());
            a.push((1u64 << 20).to_string());
        }
        a
    }

    fn spawn(&mut self, id: u64) -> io::Result<()> {
        let args = self.args(id);
        let m = self.members.get_mut(&id).expect("a member of the cluster");
        m.lives += 1;
        let log = File::create(self.spec.dir.join(format!("m{id}.life{}.log", m.lives)))?;
        let mut cmd = Command::new(&self.spec.binary);
        cmd.args(&args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // SAFETY: prctl is async-signal-safe; nothing else runs between
        // fork and exec here.
        unsafe {
            cmd.pre_exec(|| {
                // A member must not outlive the harness (a panic, a kill).
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        m.child = Some(cmd.spawn().map_err(|e| {
            io::Error::new(e.kind(), format!("{}: {e}", self.spec.binary.display()))
        })?);
        m.paused = false;
        Ok(())
    }

    /// Waits until `id`'s client port accepts connections.
    pub fn wait_serving(&mut self, id: u64, limit: Duration) -> io::Result<()> {
        let deadline = Instant::now() + limit;
        let addr = self.members[&id].client;
        loop {
            if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if let Some(c) = self.members.get_mut(&id).and_then(|m| m.child.as_mut())
                && let Ok(Some(st)) = c.try_wait()
            {
                return Err(io::Error::other(format!(
                    "member {id} exited at start: {st}"
                )));
            }
            if Instant::now() > deadline {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("member {id} does not serve on {addr}"),
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn is_running(&self, id: u64) -> bool {
        self.members[&id].child.is_some()
    }

    pub fn is_paused(&self, id: u64) -> bool {
        self.members[&id].paused
    }

    fn signal(&self, id: u64, sig: i32) {
        if let Some(c) = &self.members[&id].child {
            // SAFETY: kill(2) on our own child's pid.
            unsafe {
                libc::kill(c.id() as i32, sig);
            }
        }
    }

    /// SIGKILL, and reap.
    pub fn kill(&mut self, id: u64) {
        self.signal(id, libc::SIGKILL);
        let m = self.members.get_mut(&id).expect("a member");
        if let Some(mut c) = m.child.take() {
            let _ = c.wait();
        }
        m.paused = false;
    }

    /// Starts a killed member again from its data directory.
    pub fn restart(&mut self, id: u64) -> io::Result<()> {
        if self.is_running(id) {
            return Ok(());
        }
        self.spawn(id)?;
        self.wait_serving(id, Duration::from_secs(30))
    }

    pub fn pause(&mut self, id: u64) {
        self.signal(id, libc::SIGSTOP);
        self.members.get_mut(&id).expect("a member").paused = true;
    }

    pub fn resume(&mut self, id: u64) {
        self.signal(id, libc::SIGCONT);
        self.members.get_mut(&id).expect("a member").paused = false;
    }

    /// Sets the fault of link `from -> to`.
    pub fn link(&self, from: u64, to: u64, fault: Fault) {
        if let Some(p) = self.links.get(&(from, to)) {
            p.set(fault);
        }
    }

    /// Leaves no free byte on `id`'s file system (`own_disks` only: else
    /// nothing). Returns the bytes it holds then.
    pub fn fill_disk(&mut self, id: u64) -> io::Result<Option<u64>> {
        match self.members.get_mut(&id).and_then(|m| m.disk.as_mut()) {
            Some(d) => d.fill().map(Some),
            None => Ok(None),
        }
    }

    /// Every link back to `Pass`, every full disk given room, every paused
    /// member resumed, every killed member restarted.
    pub fn heal(&mut self) -> io::Result<()> {
        for p in self.links.values() {
            p.set(Fault::Pass);
        }
        for m in self.members.values_mut() {
            if let Some(d) = m.disk.as_mut() {
                d.free()?;
            }
        }
        for id in self.ids() {
            if self.is_paused(id) {
                self.resume(id);
            }
            if !self.is_running(id) {
                self.restart(id)?;
            }
        }
        Ok(())
    }

    /// Whether a member exited on its own (a crash): `(id, status)`.
    pub fn exited(&mut self) -> Vec<(u64, String)> {
        let mut out = Vec::new();
        for (&id, m) in self.members.iter_mut() {
            if let Some(c) = m.child.as_mut()
                && let Ok(Some(st)) = c.try_wait()
            {
                out.push((id, st.to_string()));
                m.child = None;
            }
        }
        out
    }

    /// Stops every member (SIGKILL) and copies each data directory that
    /// lives on a member's own tmpfs to `m<id>.data` beside the logs.
    pub fn preserve_disks(&mut self) -> io::Result<Vec<(u64, PathBuf)>> {
        let mut out = Vec::new();
        for id in self.ids() {
            if self.is_paused(id) {
                self.resume(id);
            }
            self.kill(id);
            let m = &self.members[&id];
            if m.disk.is_some() {
                let to = self.spec.dir.join(format!("m{id}.data"));
                copy_tree(&m.data, &to)?;
                out.push((id, to));
            }
        }
        Ok(out)
    }

    pub fn log_dir(&self) -> &Path {
        &self.spec.dir
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for id in self.ids() {
            if self.is_paused(id) {
                self.resume(id);
            }
            self.kill(id);
        }
    }
}

fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let dest = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_tree(&e.path(), &dest)?;
        } else {
            std::fs::copy(e.path(), dest)?;
        }
    }
    Ok(())
}
