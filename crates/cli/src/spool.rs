//! The deferred spool: where a hook hands its deferred work over to a
//! detached worker, so that nothing is lost and every object's runs keep
//! their order.
//!
//! A directory (`deferred_dir`, by default `/run/virt-hooks/deferred` as
//! root), mode 0700, owned by the user virt-hook runs as; anything else is
//! refused. It holds:
//!
//! - `sequence`: a counter, read and increased under `flock`: each entry's
//!   number, so entries order as their events did (libvirt calls the hooks
//!   of one object one after the other, so one object's entries are
//!   numbered in the order of its events);
//! - `<seq>.entry`: one handed-over event, a JSON header line (the event,
//!   its id, the hooks directory and layout) then the document. It is
//!   written under a temporary name `.new-*`, locked (`flock`, exclusive)
//!   before it gets its name, and the lock is held, through the inherited
//!   open file, by the hook and then by the worker until the worker has
//!   recorded every script and removed the entry. An entry whose lock is
//!   free is therefore abandoned (its worker could not start, crashed or
//!   was killed): the next worker records it as lost and removes it;
//! - `slots/<n>`: `deferred_parallel` lock files; a worker holds one while
//!   its scripts run, so at most that many objects run at once.
//!
//! Before its scripts run, a worker waits for every entry of the same
//! object with a smaller number to be done (a blocking `flock` on it):
//! one object's deferred runs start in the order of its events and never
//! overlap; other objects' runs do not wait.

use std::{
    fs::{self, DirBuilder, File, OpenOptions},
    io::{BufRead, BufReader, Read, Seek, SeekFrom, Write},
    os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt},
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use anyhow::Context;
use rustix::fs::{FlockOperation, flock};
use serde::{Deserialize, Serialize};
use virt_hooks::{DEFAULT_DEFERRED_DIR, Event, Layout};

/// The most bytes of an entry's header line.
const MAX_HEADER: u64 = 1 << 20;

/// How old an unlocked `.new-*` file (a hook that died while writing it)
/// must be before a worker removes it.
const ABANDONED_NEW: Duration = Duration::from_secs(60);

/// One handed-over event: the first line of an entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Header {
    /// The entry's number.
    pub(crate) seq: u64,
    /// The synchronous run's event id, shared by the records.
    pub(crate) event_id: String,
    pub(crate) hooks_dir: PathBuf,
    pub(crate) layout: Layout,
    pub(crate) driver: String,
    pub(crate) object: String,
    pub(crate) operation: String,
    pub(crate) sub_operation: String,
    pub(crate) extra: String,
    /// Whether a document follows (an empty one is a document too).
    pub(crate) input: bool,
}

impl Header {
    /// The event, borrowing this header and `document`.
    pub(crate) fn event<'a>(&'a self, document: &'a [u8]) -> Event<'a> {
        let event = Event::new(
            &self.driver,
            &self.object,
            &self.operation,
            &self.sub_operation,
            &self.extra,
        );
        if self.input { event.with_input(document) } else { event }
    }

    fn same_object(&self, other: &Header) -> bool {
        self.driver == other.driver && self.object == other.object
    }
}

/// The spool directory and its parallel limit.
#[derive(Debug, Clone)]
pub(crate) struct Spool {
    pub(crate) dir: PathBuf,
    pub(crate) parallel: u32,
}

/// An entry handed over: its file (locked) and its path.
#[derive(Debug)]
pub(crate) struct Submitted {
    pub(crate) file: File,
    pub(crate) path: PathBuf,
}

/// What a worker holds while its scripts run: its slot.
#[derive(Debug)]
pub(crate) struct Turn {
    _slot: File,
}

impl Spool {
    /// The spool of `dir` (`None`: the default), at most `parallel`
    /// objects at once.
    pub(crate) fn new(dir: Option<&Path>, parallel: u32) -> Spool {
        let dir = dir.map_or_else(default_dir, Path::to_path_buf);
        Spool { dir, parallel: parallel.max(1) }
    }

    /// Creates the directory (0700) if missing and checks it is private.
    fn open(&self) -> anyhow::Result<()> {
        let dir = &self.dir;
        match DirBuilder::new().recursive(true).mode(0o700).create(dir) {
            Ok(()) => {}
            Err(err) => {
                return Err(err).with_context(|| {
                    format!("cannot create the deferred spool {}", dir.display())
                });
            }
        }
        let meta = fs::symlink_metadata(dir)
            .with_context(|| format!("cannot read the deferred spool {}", dir.display()))?;
        let euid = rustix::process::geteuid().as_raw();
        if !meta.is_dir() {
            anyhow::bail!("the deferred spool {} is not a directory", dir.display());
        }
        if meta.uid() != euid {
            anyhow::bail!(
                "the deferred spool {} is owned by uid {}, not by uid {euid}",
                dir.display(),
                meta.uid()
            );
        }
        if meta.mode() & 0o077 != 0 {
            anyhow::bail!(
                "the deferred spool {} has mode {:o}: others may use it (0700 is needed)",
                dir.display(),
                meta.mode() & 0o7777
            );
        }
        Ok(())
    }

    /// Writes a new entry for `header` (its `seq` is set here) and
    /// `document`, locked; the lock is the worker's once it inherits the
    /// file.
    pub(crate) fn submit(&self, header: &mut Header, document: &[u8]) -> anyhow::Result<Submitted> {
        self.open()?;
        header.seq = self.next_seq()?;
        let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        let new = self.dir.join(format!(".new-{}-{}", std::process::id(), nanos.as_nanos()));
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&new)
            .with_context(|| format!("cannot create {}", new.display()))?;
        let written = (|| -> anyhow::Result<()> {
            flock(&file, FlockOperation::NonBlockingLockExclusive)?;
            let mut line = serde_json::to_vec(&header)?;
            line.push(b'\n');
            file.write_all(&line)?;
            file.write_all(document)?;
            Ok(())
        })();
        let path = self.entry_path(header.seq);
        let renamed = written.and_then(|()| Ok(fs::rename(&new, &path)?));
        if let Err(err) = renamed {
            let _ = fs::remove_file(&new);
            return Err(err.context(format!("cannot write the entry {}", path.display())));
        }
        Ok(Submitted { file, path })
    }

    fn entry_path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:020}.entry"))
    }

    /// The next entry number.
    fn next_seq(&self) -> anyhow::Result<u64> {
        let mut file = open_private(&self.dir.join("sequence"))?;
        flock(&file, FlockOperation::LockExclusive)?;
        let mut text = String::new();
        file.read_to_string(&mut text)?;
        let seq = text.trim().parse::<u64>().unwrap_or(0) + 1;
        file.seek(SeekFrom::Start(0))?;
        file.set_len(0)?;
        file.write_all(seq.to_string().as_bytes())?;
        Ok(seq)
    }

    /// Waits for this worker's turn: every earlier entry of the same
    /// object done, then a free slot. Abandoned entries met on the way
    /// are handed to `lost` (then removed).
    pub(crate) fn wait_turn(
        &self,
        me: &Header,
        mut lost: impl FnMut(Option<&Header>, &Path, &str),
    ) -> anyhow::Result<Turn> {
        self.open()?;
        let mut entries = self.entries()?;
        entries.sort();
        for (seq, path) in entries {
            if seq == me.seq {
                continue;
            }
            let Ok(mut file) = File::open(&path) else { continue };
            let header = read_header(&mut file).ok();
            let earlier = seq < me.seq && header.as_ref().is_some_and(|h| h.same_object(me));
            if earlier {
                // Its worker holds the lock until it is done.
                flock(&file, FlockOperation::LockExclusive)?;
            } else if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
                continue;
            }
            if file.metadata().is_ok_and(|m| m.nlink() == 0) {
                continue;
            }
            let why = "its worker ended before running them (not started, crashed or killed)";
            lost(header.as_ref(), &path, why);
            let _ = fs::remove_file(&path);
        }
        self.sweep_new();
        self.slot(me.seq)
    }

    /// Every `<seq>.entry` of the spool.
    fn entries(&self) -> anyhow::Result<Vec<(u64, PathBuf)>> {
        let list = fs::read_dir(&self.dir)
            .with_context(|| format!("cannot list the deferred spool {}", self.dir.display()))?;
        Ok(list
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let seq = name.strip_suffix(".entry")?.parse().ok()?;
                Some((seq, e.path()))
            })
            .collect())
    }

    /// Removes `.new-*` files a hook died writing (unlocked, old).
    fn sweep_new(&self) {
        let Ok(list) = fs::read_dir(&self.dir) else { return };
        for entry in list.filter_map(Result::ok) {
            if !entry.file_name().to_string_lossy().starts_with(".new-") {
                continue;
            }
            let path = entry.path();
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > ABANDONED_NEW));
            let Ok(file) = File::open(&path) else { continue };
            if old && flock(&file, FlockOperation::NonBlockingLockExclusive).is_ok() {
                log::warn!("removing {}: a hook died while handing over", path.display());
                let _ = fs::remove_file(&path);
            }
        }
    }

    /// A free slot, or, when all are taken, the one `seq` maps to (waited
    /// for).
    fn slot(&self, seq: u64) -> anyhow::Result<Turn> {
        let dir = self.dir.join("slots");
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let open = |n: u64| open_private(&dir.join(n.to_string()));
        let parallel = u64::from(self.parallel);
        for n in 0..parallel {
            let file = open(n)?;
            if flock(&file, FlockOperation::NonBlockingLockExclusive).is_ok() {
                return Ok(Turn { _slot: file });
            }
        }
        let file = open(seq % parallel)?;
        flock(&file, FlockOperation::LockExclusive)?;
        Ok(Turn { _slot: file })
    }

    /// The entry is done: removed (its lock goes with the worker's file).
    pub(crate) fn finish(&self, header: &Header) {
        let path = self.entry_path(header.seq);
        if let Err(err) = fs::remove_file(&path) {
            log::warn!("cannot remove the deferred entry {}: {err}", path.display());
        }
    }

    /// Removes an entry that will not run (its worker could not start).
    pub(crate) fn discard(&self, path: &Path) {
        if let Err(err) = fs::remove_file(path) {
            log::warn!("cannot remove the deferred entry {}: {err}", path.display());
        }
    }
}

/// The default spool: [`DEFAULT_DEFERRED_DIR`] as root, else
/// `$XDG_RUNTIME_DIR/virt-hooks/deferred`, else
/// `<tmp>/virt-hooks-<uid>/deferred`.
fn default_dir() -> PathBuf {
    let euid = rustix::process::geteuid();
    if euid.is_root() {
        return PathBuf::from(DEFAULT_DEFERRED_DIR);
    }
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("virt-hooks/deferred"),
        None => std::env::temp_dir().join(format!("virt-hooks-{}/deferred", euid.as_raw())),
    }
}

/// Reads an entry from `file`: its header and its document.
pub(crate) fn read_entry(file: &mut File) -> anyhow::Result<(Header, Vec<u8>)> {
    file.seek(SeekFrom::Start(0))?;
    let mut reader = BufReader::new(file);
    let header = header_from(&mut reader)?;
    let mut document = Vec::new();
    reader.read_to_end(&mut document)?;
    Ok((header, document))
}

fn read_header(file: &mut File) -> anyhow::Result<Header> {
    header_from(&mut BufReader::new(file))
}

fn header_from(reader: &mut impl BufRead) -> anyhow::Result<Header> {
    let mut line = Vec::new();
    reader.take(MAX_HEADER).read_until(b'\n', &mut line)?;
    if line.last() != Some(&b'\n') {
        anyhow::bail!("a deferred entry without a complete header line");
    }
    serde_json::from_slice(&line).context("a deferred entry with a bad header")
}

/// Opens `path` for reading and writing, created with mode 0600 if missing,
/// never truncated: the spool's counter and slot files.
fn open_private(path: &Path) -> anyhow::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))
}
