//! Wake-ups for discovery: inotify on the cgroup directories that can get container
//! children (every non-container directory the last scan walked), so a new container is
//! scanned for within milliseconds; the periodic rescan remains the safety net for what
//! inotify misses (watch limit reached, events dropped on queue overflow, filesystems
//! without inotify). Events only say "look again"; the scan decides what changed.

use std::collections::{HashMap, HashSet};
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

use rustix::fs::inotify::{self, CreateFlags, WatchFlags};
use tokio::io::unix::AsyncFd;

/// An inotify instance watching a set of directories for child create/delete.
pub struct DirWatcher {
    fd: AsyncFd<OwnedFd>,
    by_path: HashMap<PathBuf, i32>,
    /// A failure to add a watch was logged (repeats are not).
    logged_failure: bool,
}

impl std::fmt::Debug for DirWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirWatcher")
            .field("watched", &self.by_path.len())
            .finish()
    }
}

impl DirWatcher {
    /// A watcher with nothing watched yet (needs a tokio runtime).
    pub fn new() -> std::io::Result<Self> {
        let fd = inotify::init(CreateFlags::NONBLOCK | CreateFlags::CLOEXEC)?;
        // `AsyncFd::new` is deprecated for fds that may be closed while registered; this one
        // is owned by the AsyncFd and closed only after deregistration (the replacement,
        // `register`, is `unsafe`, which the workspace denies).
        #[allow(deprecated)]
        let fd = AsyncFd::new(fd)?;
        Ok(Self {
            fd,
            by_path: HashMap::new(),
            logged_failure: false,
        })
    }

    /// Watch exactly `dirs`: add new ones, drop the ones no longer listed.
    pub fn sync(&mut self, dirs: &[PathBuf]) {
        let wanted: HashSet<&PathBuf> = dirs.iter().collect();
        let stale: Vec<PathBuf> = self
            .by_path
            .keys()
            .filter(|p| !wanted.contains(p))
            .cloned()
            .collect();
        for p in stale {
            if let Some(wd) = self.by_path.remove(&p) {
                // Fails harmlessly when the directory is gone (the kernel dropped the watch).
                let _ = inotify::remove_watch(self.fd.get_ref(), wd);
            }
        }
        for dir in dirs {
            if self.by_path.contains_key(dir) {
                continue;
            }
            let flags = WatchFlags::CREATE
                | WatchFlags::DELETE
                | WatchFlags::MOVED_TO
                | WatchFlags::MOVED_FROM
                | WatchFlags::ONLYDIR;
            match inotify::add_watch(self.fd.get_ref(), dir.as_path(), flags) {
                Ok(wd) => {
                    self.by_path.insert(dir.clone(), wd);
                }
                Err(e) => {
                    if !self.logged_failure {
                        self.logged_failure = true;
                        tracing::warn!(dir = %dir.display(), error = %e, "inotify watch failed; relying on the periodic rescan");
                    }
                }
            }
        }
        if self.by_path.len() * 4 < self.by_path.capacity() {
            self.by_path.shrink_to(self.by_path.len() * 2);
        }
    }

    /// Number of directories watched.
    pub fn watched(&self) -> usize {
        self.by_path.len()
    }

    /// Wait until at least one event arrived, then drain all pending events.
    pub async fn changed(&mut self) -> std::io::Result<()> {
        loop {
            let mut guard = self.fd.readable().await?;
            let mut buf = [MaybeUninit::<u8>::uninit(); 4096];
            let mut reader = inotify::Reader::new(self.fd.get_ref(), &mut buf);
            let mut got = false;
            loop {
                match reader.next() {
                    Ok(_) => got = true,
                    Err(rustix::io::Errno::AGAIN) => break,
                    Err(e) => return Err(e.into()),
                }
            }
            guard.clear_ready();
            if got {
                return Ok(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn wakes_on_new_and_removed_child_directories() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = DirWatcher::new().unwrap();
        w.sync(&[dir.path().to_path_buf(), dir.path().join("missing")]);
        assert_eq!(w.watched(), 1);
        std::fs::create_dir(dir.path().join("child")).unwrap();
        tokio::time::timeout(Duration::from_secs(5), w.changed())
            .await
            .unwrap()
            .unwrap();
        std::fs::remove_dir(dir.path().join("child")).unwrap();
        tokio::time::timeout(Duration::from_secs(5), w.changed())
            .await
            .unwrap()
            .unwrap();
        w.sync(&[]);
        assert_eq!(w.watched(), 0);
    }
}
