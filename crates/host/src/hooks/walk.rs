//! The trust walk: a path judged the way the kernel will resolve it, one
//! component at a time.
//!
//! The walk starts at an anchor (the hooks directory, a plugin directory),
//! opens every component with `openat(O_PATH | O_NOFOLLOW)` relative to the
//! directory it has just judged, and judges what `fstat` says of that very
//! descriptor. A symbolic link is judged, read with `readlinkat` and followed
//! by hand (at most [`MAX_LINKS`], as the kernel); an absolute target starts
//! again at `/`. So what is judged is exactly what the kernel walks through,
//! and no path is resolved first and checked afterwards.
//!
//! Which component must pass which rule is `security`'s part
//! (a [`Judge`]); this module only walks.

use std::{
    collections::VecDeque,
    ffi::OsString,
    os::{
        fd::{AsFd, OwnedFd},
        unix::ffi::OsStrExt,
    },
    path::{Component, Path, PathBuf},
    sync::Arc,
};

use rustix::fs::{self as rfs, FileType, Mode, OFlags};

/// The rule a walk applies: a verdict on each component it meets.
pub(crate) trait Judge {
    /// Why a component is refused.
    type Fault;
    /// A directory holding a link or the file of the chain, or one the walk
    /// passes through below the anchor's ancestors.
    fn holder(&self, path: &Path, meta: &Meta) -> Result<(), Self::Fault>;
    /// A symbolic link of the chain (its holder is judged apart).
    fn link(&self, path: &Path, meta: &Meta) -> Result<(), Self::Fault>;
    /// What the chain ends at.
    fn end(&self, path: &Path, meta: &Meta) -> Result<(), Self::Fault>;
}

/// Why a walk stopped before reaching an acceptable end.
#[derive(Debug)]
pub(crate) enum Stop<F> {
    /// The rule refused a component.
    Refused(F),
    /// A component could not be opened or examined.
    Unreadable {
        /// The component.
        path: PathBuf,
        /// Why.
        err: std::io::Error,
    },
    /// The link at `path` is one more than [`MAX_LINKS`].
    TooManyLinks {
        /// The link.
        path: PathBuf,
    },
}

impl<F> From<F> for Stop<F> {
    fn from(fault: F) -> Stop<F> {
        Stop::Refused(fault)
    }
}

/// The most symbolic links one walk follows (the kernel's `MAXSYMLINKS`).
pub(crate) const MAX_LINKS: usize = 40;

/// What `fstat` said about one descriptor of the walk.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Meta {
    /// `st_mode`: the file type and the permission bits.
    pub(crate) mode: u32,
    /// The owner.
    pub(crate) uid: u32,
    dev: u64,
    ino: u64,
}

impl Meta {
    fn of(fd: impl AsFd) -> rustix::io::Result<Meta> {
        let st = rfs::fstat(fd)?;
        Ok(Meta { mode: st.st_mode, uid: st.st_uid, dev: st.st_dev, ino: st.st_ino })
    }

    fn file_type(&self) -> FileType {
        FileType::from_raw_mode(self.mode)
    }

    /// True for a regular file.
    pub(crate) fn is_file(&self) -> bool {
        self.file_type() == FileType::RegularFile
    }

    fn id(&self) -> (u64, u64) {
        (self.dev, self.ino)
    }
}

/// The directories one anchor's walks have opened so far, so that the
/// scripts of one directory do not each walk from the anchor again. Only
/// directories reached from the anchor by plain names (no link, no `..`)
/// are kept, with the metadata read when they were opened: every rule is
/// applied again from that metadata on each walk. A new event starts empty,
/// so a change between events is always seen.
#[derive(Debug, Default)]
pub(crate) struct Walked {
    anchor: Option<Anchor>,
}

#[derive(Debug)]
struct Anchor {
    path: PathBuf,
    /// The anchor's own ancestors (`..` up to `/`), by device and inode.
    above: Vec<(u64, u64)>,
    /// The anchor itself first (empty `rel`), then directories below it.
    dirs: Vec<Dir>,
}

#[derive(Debug)]
struct Dir {
    /// The path below the anchor.
    rel: PathBuf,
    fd: Arc<OwnedFd>,
    meta: Meta,
}

/// One step of a walk.
#[derive(Debug)]
enum Step {
    Root,
    Parent,
    Name(OsString),
}

fn steps(path: &Path) -> impl Iterator<Item = Step> + '_ {
    path.components().filter_map(|c| match c {
        Component::RootDir | Component::Prefix(_) => Some(Step::Root),
        Component::CurDir => None,
        Component::ParentDir => Some(Step::Parent),
        Component::Normal(name) => Some(Step::Name(name.to_owned())),
    })
}

fn path_fd() -> OFlags {
    OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC
}

fn dir_fd() -> OFlags {
    OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC
}

fn fault<F>(path: &Path, err: rustix::io::Errno) -> Stop<F> {
    Stop::Unreadable { path: path.to_owned(), err: err.into() }
}

impl Walked {
    /// The anchor at `path`, opened (following links: where the anchor is
    /// is the configuration's choice) on first use.
    fn anchor<F>(&mut self, path: &Path) -> Result<&mut Anchor, Stop<F>> {
        if self.anchor.as_ref().is_none_or(|a| a.path != path) {
            let fd = rfs::open(path, dir_fd(), Mode::empty()).map_err(|e| fault(path, e))?;
            let meta = Meta::of(&fd).map_err(|e| fault(path, e))?;
            let above = ancestors(&fd, meta);
            let dirs = vec![Dir { rel: PathBuf::new(), fd: Arc::new(fd), meta }];
            self.anchor = Some(Anchor { path: path.to_owned(), above, dirs });
        }
        self.anchor.as_mut().ok_or_else(|| fault(path, rustix::io::Errno::NOENT))
    }
}

/// The directories above `fd` (`..`, `../..`, ... up to `/`). A failure
/// only shortens the list, which makes the walk stricter.
fn ancestors(fd: &OwnedFd, meta: Meta) -> Vec<(u64, u64)> {
    let mut above = Vec::new();
    let (mut here, mut here_meta) = (None::<OwnedFd>, meta);
    // Deeper than any real tree; only a bound.
    for _ in 0..4096 {
        let base = here.as_ref().unwrap_or(fd);
        let Ok(parent) = rfs::openat(base, "..", dir_fd(), Mode::empty()) else { break };
        let Ok(parent_meta) = Meta::of(&parent) else { break };
        if parent_meta.id() == here_meta.id() {
            break;
        }
        above.push(parent_meta.id());
        (here, here_meta) = (Some(parent), parent_meta);
    }
    above
}

/// Walks `rest` (a path relative to `anchor`) as the kernel will, applying
/// `rule` to every directory, link and the file at the end.
pub(crate) fn walk<J: Judge>(
    anchor: &Path,
    rest: &Path,
    rule: &J,
    walked: &mut Walked,
) -> Result<(), Stop<J::Fault>> {
    let anchor_dir = walked.anchor(anchor)?;
    // Start at the deepest directory already opened on the way.
    let depth = rest.components().count();
    let start = anchor_dir
        .dirs
        .iter()
        .filter(|d| d.rel.components().count() < depth && rest.starts_with(&d.rel))
        .max_by_key(|d| d.rel.components().count())
        .unwrap_or(&anchor_dir.dirs[0]);
    let mut cur = Arc::clone(&start.fd);
    let mut cur_meta = start.meta;
    let mut cur_path =
        if start.rel.as_os_str().is_empty() { anchor.to_owned() } else { anchor.join(&start.rel) };
    // The path below the anchor while only plain names were walked.
    let mut plain = Some(start.rel.clone());
    let remaining = rest.strip_prefix(&start.rel).unwrap_or(rest);
    let mut pending: VecDeque<Step> = steps(remaining).collect();
    let above = anchor_dir.above.clone();
    let mut links = 0;
    while let Some(step) = pending.pop_front() {
        match step {
            Step::Root => {
                let root = Path::new("/");
                let fd = rfs::open(root, dir_fd(), Mode::empty()).map_err(|e| fault(root, e))?;
                cur_meta = Meta::of(&fd).map_err(|e| fault(root, e))?;
                cur = Arc::new(fd);
                cur_path = root.to_owned();
                plain = None;
            }
            Step::Parent => {
                let fd = rfs::openat(&*cur, "..", dir_fd(), Mode::empty())
                    .map_err(|e| fault(&cur_path.join(".."), e))?;
                cur_meta = Meta::of(&fd).map_err(|e| fault(&cur_path, e))?;
                cur = Arc::new(fd);
                if !cur_path.pop() || cur_path.as_os_str().is_empty() {
                    cur_path.push("..");
                }
                plain = None;
            }
            Step::Name(name) => {
                let path = cur_path.join(&name);
                let fd = rfs::openat(&*cur, name.as_os_str(), path_fd(), Mode::empty())
                    .map_err(|e| fault(&path, e))?;
                let meta = Meta::of(&fd).map_err(|e| fault(&path, e))?;
                let last = pending.is_empty();
                match meta.file_type() {
                    FileType::Symlink => {
                        rule.holder(&cur_path, &cur_meta)?;
                        rule.link(&path, &meta)?;
                        links += 1;
                        if links > MAX_LINKS {
                            return Err(Stop::TooManyLinks { path });
                        }
                        let target =
                            rfs::readlinkat(&fd, "", Vec::new()).map_err(|e| fault(&path, e))?;
                        let target = Path::new(std::ffi::OsStr::from_bytes(target.as_bytes()));
                        if target.as_os_str().is_empty() {
                            return Err(fault(&path, rustix::io::Errno::NOENT));
                        }
                        for step in steps(target).collect::<Vec<_>>().into_iter().rev() {
                            pending.push_front(step);
                        }
                        plain = None;
                    }
                    FileType::Directory if !last => {
                        if !above.contains(&cur_meta.id()) {
                            rule.holder(&cur_path, &cur_meta)?;
                        }
                        cur = Arc::new(fd);
                        cur_meta = meta;
                        cur_path = path;
                        if let Some(rel) = &mut plain {
                            rel.push(&name);
                            anchor_dir.dirs.push(Dir {
                                rel: rel.clone(),
                                fd: Arc::clone(&cur),
                                meta,
                            });
                        }
                    }
                    _ if last => {
                        rule.holder(&cur_path, &cur_meta)?;
                        return Ok(rule.end(&path, &meta)?);
                    }
                    _ => return Err(fault(&path, rustix::io::Errno::NOTDIR)),
                }
            }
        }
    }
    // The walk ended on a directory (`..`, `.`, or nothing to walk).
    // The chain ends at a directory: the rule says what that is worth.
    Ok(rule.end(&cur_path, &cur_meta)?)
}
