//! Deterministic test inputs and small file-system helpers.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// `len` pseudo-random bytes from `seed` (xorshift64*), identical on every run.
pub fn pseudo_random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

const WORDS: &[&str] = &[
    "alpha",
    "bravo",
    "charlie",
    "delta",
    "echo",
    "foxtrot",
    "golf",
    "hotel",
    "india",
    "juliet",
    "kilo",
    "lima",
    "mike",
    "november",
    "oscar",
    "papa",
    "quebec",
    "romeo",
    "sierra",
    "tango",
    "uniform",
    "victor",
    "whiskey",
    "xray",
    "yankee",
    "zulu",
    "Translator",
    "cache",
    "block",
    "syscall",
    "signal",
    "x86-64",
];

/// `lines` lines of pseudo-random text: 1-8 words and a number per line,
/// some repeated lines (for uniq), identical on every run.
pub fn pseudo_random_text(seed: u64, lines: usize) -> String {
    let mut x = seed | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut s = String::new();
    let mut prev = String::new();
    for _ in 0..lines {
        let r = next();
        if r % 10 == 0 && !prev.is_empty() {
            s.push_str(&prev);
            continue;
        }
        let mut line = String::new();
        let n = 1 + (r >> 8) % 8;
        for i in 0..n {
            if i > 0 {
                line.push(' ');
            }
            line.push_str(WORDS[(next() % WORDS.len() as u64) as usize]);
        }
        line.push_str(&format!(" {}\n", next() % 100_000));
        s.push_str(&line);
        prev = line;
    }
    s
}

/// Writes `data` to `dir/rel`, creating parent directories.
pub fn write_file(dir: &Path, rel: &str, data: impl AsRef<[u8]>) {
    let p = dir.join(rel);
    if let Some(parent) = p.parent()
        && let Err(e) = std::fs::create_dir_all(parent)
    {
        panic!("cannot create {}: {e}", parent.display());
    }
    if let Err(e) = std::fs::write(&p, data) {
        panic!("cannot write {}: {e}", p.display());
    }
}

/// Sets the access and modification time of `root` and everything below it
/// (symlinks themselves, not their targets) to `secs` after the epoch.
pub fn set_mtimes(root: &Path, secs: u64) {
    let meta = match std::fs::symlink_metadata(root) {
        Ok(m) => m,
        Err(e) => panic!("cannot stat {}: {e}", root.display()),
    };
    if meta.is_dir() {
        let entries = match std::fs::read_dir(root) {
            Ok(rd) => rd,
            Err(e) => panic!("cannot read {}: {e}", root.display()),
        };
        for e in entries.flatten() {
            set_mtimes(&e.path(), secs);
        }
    }
    let c = match CString::new(root.as_os_str().as_bytes()) {
        Ok(c) => c,
        Err(_) => panic!("path {} contains a NUL byte", root.display()),
    };
    let t = libc::timespec { tv_sec: secs as libc::time_t, tv_nsec: 0 };
    let times = [t, t];
    // SAFETY: `c` is a valid NUL-terminated path and `times` points to two
    // timespecs, as utimensat(2) requires; both outlive the call.
    let rc = unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), times.as_ptr(), libc::AT_SYMLINK_NOFOLLOW) };
    if rc != 0 {
        panic!("cannot set times of {}: {}", root.display(), std::io::Error::last_os_error());
    }
}
