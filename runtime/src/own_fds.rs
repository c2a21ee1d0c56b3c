//! bt-run's own descriptors: where trace lines and statistics go (`OUT`:
//! the `-o` file, or a private duplicate of the stderr bt-run was started
//! with) and where bt-run's own messages go (`DIAG`: that duplicate).
//!
//! The invariant (docs/design.md, "bt-run's own descriptors"): they are
//! taken before the guest runs and kept at or above the guest's
//! RLIMIT_NOFILE soft limit, which is the kernel's own (so the kernel never
//! hands their numbers to the guest, and dup2 onto them fails as natively),
//! or, when the soft limit is the hard one, on the highest free numbers
//! below it; a guest call that names one fails with EBADF as if it were
//! closed (the gate sends calls with a descriptor argument at or above
//! `FD_FLOOR` to the runtime, which checks them with `is_own`); /proc/self/fd
//! listings leave them out. They are close-on-exec except across bt-run's
//! own re-execution, which gets their numbers with `--own-fds`.
//!
//! With `-ff` (`--output-separately`) there is no `OUT`: each thread's
//! trace lines and statistics go to a file of its own, `FILE.TID`, as
//! strace writes them. Its descriptor is one of bt-run's like the others
//! (placed out of reach, listed by `own_fds`), kept in `THREAD_OUT` by
//! thread id, and opened at the thread's first line.

use std::ffi::OsString;
use std::io;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, Ordering};

use crate::loader::io_reason as reason;
use crate::sys::fds as sysfd;

/// Trace lines and statistics (-1: none).
static OUT: AtomicI32 = AtomicI32::new(-1);
/// bt-run's own messages (-1: none; often the same descriptor as `OUT`).
static DIAG: AtomicI32 = AtomicI32::new(-1);
/// A descriptor being given up by a move, still bt-run's until closed.
static RETIRING: AtomicI32 = AtomicI32::new(-1);
pub use crate::sys::fds::FD_FLOOR;
/// `-ff`: the FILE of each thread's FILE.TID (set once, before the guest
/// runs).
static SEPARATE: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
/// `-ff`: each thread's descriptor, `tid << 32 | fd` (0: a free slot).
/// Threads beyond the slots open their file for each write.
const THREAD_SLOTS: usize = 512;
static THREAD_OUT: [AtomicU64; THREAD_SLOTS] = [const { AtomicU64::new(0) }; THREAD_SLOTS];

fn slot_fds() -> impl Iterator<Item = i32> {
    THREAD_OUT.iter().map(|s| s.load(Ordering::Acquire)).filter(|&v| v != 0).map(|v| v as u32 as i32)
}

/// Set once the descriptors are set up (before: messages go to fd 2,
/// which is still bt-run's own).
static READY: AtomicBool = AtomicBool::new(false);

/// Writes in flight (low bits) and `MOVING`: a move waits until no write is
/// in flight and keeps new ones out, so no write ever goes to a number that
/// the guest may be given in the meantime.
static STATE: AtomicU32 = AtomicU32::new(0);
const MOVING: u32 = 1 << 31;

fn enter() {
    loop {
        let s = STATE.load(Ordering::Acquire);
        if s & MOVING == 0 && STATE.compare_exchange_weak(s, s + 1, Ordering::Acquire, Ordering::Relaxed).is_ok() {
            return;
        }
        if s & MOVING != 0 {
            std::thread::yield_now();
        }
    }
}

fn leave() {
    STATE.fetch_sub(1, Ordering::Release);
}

/// Held while descriptors move.
struct Moving;

impl Moving {
    fn begin() -> Moving {
        while STATE.fetch_or(MOVING, Ordering::Acquire) & MOVING != 0 {
            std::thread::yield_now();
        }
        while STATE.load(Ordering::Acquire) != MOVING {
            std::thread::yield_now();
        }
        Moving
    }
}

impl Drop for Moving {
    fn drop(&mut self) {
        STATE.store(0, Ordering::Release);
    }
}

fn get(a: &AtomicI32) -> Option<i32> {
    let v = a.load(Ordering::Acquire);
    (v >= 0).then_some(v)
}

fn update_floor() {
    let floor = [&OUT, &DIAG, &RETIRING].iter().filter_map(|a| get(a)).chain(slot_fds()).min().unwrap_or(i32::MAX);
    FD_FLOOR.store(floor, Ordering::Release);
}

/// Does the guest's argument `arg` (a descriptor: the kernel reads its low
/// 32 bits) name one of bt-run's descriptors?
pub fn is_own(arg: u64) -> bool {
    let fd = arg as u32 as i32;
    fd >= FD_FLOOR.load(Ordering::Acquire)
        && ([&OUT, &DIAG, &RETIRING].iter().any(|a| get(a) == Some(fd)) || slot_fds().any(|s| s == fd))
}

/// bt-run's descriptors now, lowest first.
pub fn own_fds() -> Vec<i32> {
    let mut v: Vec<i32> = [&OUT, &DIAG, &RETIRING].iter().filter_map(|a| get(a)).chain(slot_fds()).collect();
    v.sort_unstable();
    v.dedup();
    v
}

fn write_to(which: &AtomicI32, text: &[u8]) {
    // A vfork child has a descriptor table of its own (moves in its parent
    // do not touch it) and must leave the parent's count alone: it may exec
    // or die at any point.
    let counted = !in_vfork_child();
    if counted {
        enter();
    }
    if let Some(fd) = get(which) {
        let _ = sysfd::write_all(fd, text);
    }
    if counted {
        leave();
    }
}

/// The pid of the vfork child running in this memory while its parent
/// thread waits (0: none). This memory is the parent's: what the child
/// changes here stays after it has gone.
static VFORK_CHILD: AtomicI32 = AtomicI32::new(0);

/// Is the caller a vfork child running in its parent's memory?
fn in_vfork_child() -> bool {
    let v = VFORK_CHILD.load(Ordering::Acquire);
    v != 0 && v == sysfd::getpid()
}

/// In a vfork child, first thing.
pub fn vfork_child_start() {
    VFORK_CHILD.store(sysfd::getpid(), Ordering::Release);
}

/// In the parent, before it starts a vfork child: what to restore after.
pub fn vfork_parent_begin() -> i32 {
    VFORK_CHILD.load(Ordering::Acquire)
}

/// In the parent, once its vfork child has exec'd or exited.
pub fn vfork_parent_end(outer: i32) {
    VFORK_CHILD.store(outer, Ordering::Release);
}

/// Write trace lines or statistics (one write(2), so lines from several
/// threads and processes do not interleave).
pub fn write_output(text: &str) {
    match SEPARATE.get() {
        Some(base) => write_separate(base, text.as_bytes()),
        None => write_to(&OUT, text.as_bytes()),
    }
}

/// `-ff`: is trace output split by thread?
fn separate() -> bool {
    SEPARATE.get().is_some()
}

/// `-ff`: FILE.TID opened for appending and placed out of reach.
///
/// Between the open and the placement the file has a low number another
/// guest thread could close and reuse; the placed copy is checked to be
/// the file at the path (else it is dropped and the open tried again), so
/// lines never go into a file of the guest's.
fn open_thread_file(base: &Path, tid: u64) -> io::Result<i32> {
    use std::os::fd::IntoRawFd;
    use std::os::unix::fs::MetadataExt;
    let mut path = base.as_os_str().to_owned();
    path.push(format!(".{tid}"));
    for _ in 0..8 {
        let f = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
        let want = std::fs::metadata(&path).map(|m| (m.dev(), m.ino()));
        let low = f.into_raw_fd();
        let placed = place_copy(low);
        sysfd::close(low);
        let fd = placed?;
        if want.is_ok_and(|w| sysfd::identity(fd) == Some(w)) {
            return Ok(fd);
        }
        sysfd::close(fd);
    }
    Err(io::Error::from_raw_os_error(libc::EAGAIN))
}

fn write_separate(base: &Path, text: &[u8]) {
    let tid = crate::sys::gettid();
    if in_vfork_child() {
        // A descriptor table of its own, and memory that is the parent's:
        // nothing to keep.
        if let Ok(fd) = open_thread_file(base, tid) {
            let _ = sysfd::write_all(fd, text);
            sysfd::close(fd);
        }
        return;
    }
    let mine = || THREAD_OUT.iter().map(|s| s.load(Ordering::Acquire)).find(|&v| v >> 32 == tid);
    if mine().is_none() {
        // Opened, placed and recorded while nothing else of bt-run's moves
        // (so two placements cannot pick the same number, and the floor is
        // right before the guest can name the new descriptor).
        let m = Moving::begin();
        match open_thread_file(base, tid) {
            Ok(fd) => {
                let v = tid << 32 | fd as u32 as u64;
                let kept =
                    THREAD_OUT.iter().any(|s| s.compare_exchange(0, v, Ordering::AcqRel, Ordering::Relaxed).is_ok());
                if !kept {
                    // No slot left: this line, then the file is closed.
                    let _ = sysfd::write_all(fd, text);
                    sysfd::close(fd);
                    return;
                }
                update_floor();
            }
            Err(e) => {
                drop(m);
                if !OPEN_FAILED.swap(true, Ordering::AcqRel) {
                    diag(&format!("bt-run: cannot open trace file {}.{tid}: {}\n", base.display(), reason(&e)));
                }
                return;
            }
        }
    }
    enter();
    if let Some(v) = mine() {
        let _ = sysfd::write_all(v as u32 as i32, text);
    }
    leave();
}

/// A `-ff` file could not be opened (reported once per process image).
static OPEN_FAILED: AtomicBool = AtomicBool::new(false);

/// `-ff`: this thread is ending; its file is closed.
pub fn thread_gone() {
    if SEPARATE.get().is_none() || in_vfork_child() {
        return;
    }
    let tid = crate::sys::gettid();
    let _m = Moving::begin();
    for s in &THREAD_OUT {
        let v = s.load(Ordering::Acquire);
        if v != 0 && v >> 32 == tid {
            s.store(0, Ordering::Release);
            sysfd::close(v as u32 as i32);
        }
    }
    update_floor();
}

/// `-ff`: trace output goes to FILE.TID, one file per thread (in a
/// re-executed bt-run too, which is given the same FILE).
pub fn set_separate(base: &Path) {
    let _ = SEPARATE.set(base.to_path_buf());
}

/// Write one of bt-run's own messages (a whole line).
pub fn diag(line: &str) {
    if READY.load(Ordering::Acquire) {
        write_to(&DIAG, line.as_bytes());
    } else {
        let _ = sysfd::write_all(2, line.as_bytes());
    }
}

/// Make a copy of `src` where it is out of the guest's reach and return its
/// number: the lowest free one at or above the soft RLIMIT_NOFILE when the
/// hard limit leaves room, else the highest free one below the hard limit.
/// None: `keep` (bt-run's descriptor `src` itself) is such a place already.
fn place(src: i32, keep: Option<i32>) -> io::Result<Option<i32>> {
    let (soft, hard) = sysfd::nofile_limit();
    let cap = i32::MAX as u64;
    let (soft, hard) = (soft.min(cap), hard.min(cap));
    if keep.is_some_and(|k| k as u64 >= soft) {
        return Ok(None);
    }
    if soft < hard {
        // F_DUPFD hands out numbers below the soft limit only: lift it for
        // that one call.
        sysfd::set_nofile_limit(hard, hard)?;
        let r = sysfd::dup_from(src, soft as i32);
        let _ = sysfd::set_nofile_limit(soft, hard);
        return r.map(Some);
    }
    let own = own_fds();
    for n in (0..hard as i32).rev() {
        if Some(n) == keep {
            return Ok(None);
        }
        if n != src && !own.contains(&n) && !sysfd::is_open(n) {
            sysfd::dup_onto(src, n)?;
            return Ok(Some(n));
        }
    }
    Err(io::Error::from_raw_os_error(libc::EMFILE))
}

/// A new descriptor for `src` (which stays open), placed out of reach.
fn place_copy(src: i32) -> io::Result<i32> {
    place(src, None).map(|n| n.unwrap_or(src))
}

/// Put bt-run's descriptor `old` on `new` (a copy of it) and close `old`
/// (the caller holds `Moving`).
fn swap(old: i32, new: i32) {
    RETIRING.store(old, Ordering::Release);
    for a in [&OUT, &DIAG] {
        if get(a) == Some(old) {
            a.store(new, Ordering::Release);
        }
    }
    for s in &THREAD_OUT {
        let v = s.load(Ordering::Acquire);
        if v != 0 && v as u32 as i32 == old {
            s.store(v >> 32 << 32 | new as u32 as u64, Ordering::Release);
        }
    }
    update_floor();
    sysfd::close(old);
    RETIRING.store(-1, Ordering::Release);
    update_floor();
}

/// First start: `output` (the `-o` file, opened for appending) or a copy of
/// stderr for trace lines and statistics, and a copy of stderr for bt-run's
/// messages. `needed`: trace lines or statistics were asked for (without
/// them a run goes on even if no descriptor is free).
pub fn init(output: Option<&Path>, needed: bool) -> Result<(), String> {
    let diag = match place_copy(2) {
        Ok(fd) => Some(fd),
        // No stderr, or nothing that needs it: bt-run's messages are lost.
        Err(e) if e.raw_os_error() == Some(libc::EBADF) || !needed || output.is_some() => None,
        Err(e) => {
            return Err(format!("no descriptor free for bt-run's own output: {}", reason(&e)));
        }
    };
    if let Some(fd) = diag {
        DIAG.store(fd, Ordering::Release);
    }
    let out = match output {
        Some(_) if separate() => None,
        Some(path) => {
            use std::os::fd::IntoRawFd;
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| format!("cannot open output file {}: {}", path.display(), reason(&e)))?;
            let low = f.into_raw_fd();
            let r = place_copy(low);
            sysfd::close(low);
            Some(r.map_err(|e| format!("no descriptor free for output file {}: {}", path.display(), reason(&e)))?)
        }
        None => diag,
    };
    if let Some(fd) = out {
        OUT.store(fd, Ordering::Release);
    }
    update_floor();
    READY.store(true, Ordering::Release);
    Ok(())
}

/// A bt-run re-executed by bt-run: take over the descriptors named by
/// `--own-fds OUT,DIAG` (`-` for none) and put them out of reach.
pub fn adopt(spec: &str) -> Result<(), String> {
    let bad = || format!("invalid --own-fds '{spec}' (OUT,DIAG: open descriptors or -)");
    let (o, d) = spec.split_once(',').ok_or_else(bad)?;
    let parse = |s: &str| -> Result<i32, String> {
        if s == "-" {
            return Ok(-1);
        }
        let fd: i32 = s.parse().map_err(|_| bad())?;
        if !sysfd::is_open(fd) {
            return Err(bad());
        }
        Ok(fd)
    };
    let (o, d) = (parse(o)?, parse(d)?);
    for fd in [o, d].into_iter().filter(|&fd| fd >= 0) {
        let _ = sysfd::set_cloexec(fd, true);
    }
    OUT.store(o, Ordering::Release);
    DIAG.store(d, Ordering::Release);
    update_floor();
    READY.store(true, Ordering::Release);
    limits_changed();
    Ok(())
}

/// The guest's RLIMIT_NOFILE may have been raised: move bt-run's
/// descriptors above it. (Not in a vfork child: it has a descriptor table
/// of its own but shares these numbers with its parent. It is about to
/// exec or exit, and the new image's bt-run places them again.)
pub fn limits_changed() {
    let floor = FD_FLOOR.load(Ordering::Acquire);
    if floor == i32::MAX || (floor as u64) >= sysfd::nofile_limit().0 {
        return;
    }
    let m = Moving::begin();
    for fd in own_fds() {
        match place(fd, Some(fd)) {
            Ok(None) => {}
            Ok(Some(new)) => swap(fd, new),
            Err(e) => {
                drop(m);
                diag(&format!("bt-run: cannot keep its own descriptors out of the guest's reach: {}\n", reason(&e)));
                return;
            }
        }
    }
}

/// The guest asks for number `fd` (a dup2/dup3 target below the soft
/// limit), which is one of bt-run's: move bt-run's out of the way. False
/// if there is no room.
pub fn make_room(fd: i32) -> bool {
    let _m = Moving::begin();
    if !own_fds().contains(&fd) {
        return true;
    }
    match place(fd, None) {
        Ok(Some(new)) if new != fd => {
            swap(fd, new);
            true
        }
        _ => false,
    }
}

/// In a forked child (one thread): no write of another thread is in flight,
/// and the parent's threads' files (`-ff`) are not this process's (closed
/// here, unless `files_shared`: a clone with CLONE_FILES shares its
/// parent's descriptor table, where they are still the parent's).
pub fn after_fork(files_shared: bool) {
    STATE.store(0, Ordering::Release);
    for s in &THREAD_OUT {
        let v = s.swap(0, Ordering::AcqRel);
        if v != 0 && !files_shared {
            sysfd::close(v as u32 as i32);
        }
    }
    update_floor();
}

/// Run `f` (a guest's setrlimit) while none of bt-run's descriptors is
/// being placed (placing may lift the soft limit for a moment).
pub fn steady<R>(f: impl FnOnce() -> R) -> R {
    let _m = Moving::begin();
    f()
}

/// A descriptor of bt-run's for a moment (`-yy`'s diag socket): `f` gets
/// a function that places a copy of a new descriptor out of reach (the
/// caller closes the original) and counts it as bt-run's until `f`
/// returns, by when the copy must be closed. No other descriptor of
/// bt-run's moves meanwhile.
pub fn privately<R>(f: impl FnOnce(&dyn Fn(i32) -> io::Result<i32>) -> R) -> R {
    let _m = Moving::begin();
    let place = |low: i32| -> io::Result<i32> {
        let r = place_copy(low);
        if let Ok(fd) = r {
            RETIRING.store(fd, Ordering::Release);
            update_floor();
        }
        r
    };
    let r = f(&place);
    RETIRING.store(-1, Ordering::Release);
    update_floor();
    r
}

/// Around bt-run's re-execution on the guest's execve: the descriptors
/// survive this one exec (and no move happens while it is prepared).
pub struct ExecGuard {
    fds: Vec<i32>,
    counted: bool,
}

impl ExecGuard {
    pub fn new() -> ExecGuard {
        // (Not counted in a vfork child: its exec leaves the count in its
        // parent's memory.)
        let counted = !in_vfork_child();
        if counted {
            enter();
        }
        let fds = [&OUT, &DIAG].iter().filter_map(|a| get(a)).collect::<Vec<_>>();
        for &fd in &fds {
            let _ = sysfd::set_cloexec(fd, false);
        }
        ExecGuard { fds, counted }
    }

    /// `--own-fds OUT,DIAG` for the new bt-run.
    pub fn args(&self) -> [OsString; 2] {
        let show = |a: &AtomicI32| get(a).map_or("-".to_string(), |fd| fd.to_string());
        ["--own-fds".into(), format!("{},{}", show(&OUT), show(&DIAG)).into()]
    }
}

impl Default for ExecGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for ExecGuard {
    /// The exec failed: back to close-on-exec.
    fn drop(&mut self) {
        for &fd in &self.fds {
            let _ = sysfd::set_cloexec(fd, true);
        }
        if self.counted {
            leave();
        }
    }
}
