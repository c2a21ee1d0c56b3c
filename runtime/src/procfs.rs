//! What /proc shows of *other* bt-run processes: their kernel view is
//! bt-run's (exe link, command line), so a guest looking at another guest
//! (`pidof`, `ps`, a shell reading /proc/$$/cmdline from a child) is shown
//! the other guest's program and argv, rebuilt from that bt-run's command
//! line. (A process's own view is handled in `syscalls`.)

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// One line of /proc/PID/maps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MapsLine<'a> {
    pub start: u64,
    pub end: u64,
    /// "r-xp" and the like.
    pub perms: &'a str,
    pub offset: u64,
    /// "major:minor", in hex as the kernel prints it.
    pub dev: &'a str,
    pub inode: u64,
    /// The path or pseudo-name ("[vdso]"), empty for anonymous memory.
    pub name: String,
}

impl MapsLine<'_> {
    pub fn executable(&self) -> bool {
        self.perms.as_bytes().get(2) == Some(&b'x')
    }
}

/// Parse one line of /proc/PID/maps (None if it is not one).
pub fn maps_line(line: &str) -> Option<MapsLine<'_>> {
    let mut f = line.split_whitespace();
    let (range, perms, off, dev, inode) = (f.next()?, f.next()?, f.next()?, f.next()?, f.next()?);
    let (s, e) = range.split_once('-')?;
    Some(MapsLine {
        start: u64::from_str_radix(s, 16).ok()?,
        end: u64::from_str_radix(e, 16).ok()?,
        perms,
        offset: u64::from_str_radix(off, 16).ok()?,
        dev,
        inode: inode.parse().ok()?,
        name: f.collect::<Vec<_>>().join(" "),
    })
}

/// The guest identity of another bt-run process.
pub struct OtherGuest {
    pub exe: PathBuf,
    /// argv strings, each NUL-terminated, as /proc/PID/cmdline shows them.
    pub cmdline: Vec<u8>,
}

/// "/proc/PID/NAME" -> (PID, NAME).
pub fn proc_pid_path(p: &[u8]) -> Option<(u32, &[u8])> {
    let rest = p.strip_prefix(b"/proc/")?;
    let slash = rest.iter().position(|&b| b == b'/')?;
    let pid = std::str::from_utf8(&rest[..slash]).ok()?.parse().ok()?;
    Some((pid, &rest[slash + 1..]))
}

/// Options of bt-run that take a value (see the command line).
const WITH_VALUE: [&[u8]; 6] = [b"-o", b"--argv0", b"--cache-size", b"--deny", b"--policy", b"--own-fds"];

/// If process `pid` is a bt-run (its exe is `self_exe`), its guest.
pub fn other_guest(pid: u32, self_exe: &Path) -> Option<OtherGuest> {
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    if exe != self_exe {
        return None;
    }
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let args: Vec<&[u8]> = raw.split(|&b| b == 0).collect();
    let mut i = 1;
    let mut argv0: Option<&[u8]> = None;
    while i < args.len() {
        let a = args[i];
        if a == b"--" {
            i += 1;
            break;
        }
        if WITH_VALUE.contains(&a) {
            if a == b"--argv0" {
                argv0 = args.get(i + 1).copied();
            }
            i += 2;
            continue;
        }
        if a.starts_with(b"-") && a.len() > 1 {
            i += 1;
            continue;
        }
        break;
    }
    let prog = *args.get(i)?;
    let mut cmdline = Vec::new();
    cmdline.extend_from_slice(argv0.unwrap_or(prog));
    cmdline.push(0);
    // The split leaves one empty piece after the final NUL.
    for a in &args[i + 1..args.len().saturating_sub(1)] {
        cmdline.extend_from_slice(a);
        cmdline.push(0);
    }
    let prog = Path::new(OsStr::from_bytes(prog));
    let path =
        if prog.is_absolute() { prog.to_path_buf() } else { PathBuf::from(format!("/proc/{pid}/cwd")).join(prog) };
    let mut exe = std::fs::canonicalize(&path).ok()?;
    // A #! script runs its interpreter, which is what the exe link names.
    if let Ok(head) = std::fs::read(&exe).map(|b| b.into_iter().take(256).collect::<Vec<u8>>())
        && let Some(line) = head.strip_prefix(b"#!")
    {
        let line = line.split(|&b| b == b'\n').next().unwrap_or(&[]);
        let interp = line.split(|&b| b == b' ' || b == b'\t').find(|s| !s.is_empty());
        if let Some(i) = interp.and_then(|i| std::fs::canonicalize(Path::new(OsStr::from_bytes(i))).ok()) {
            exe = i;
        }
    }
    Some(OtherGuest { exe, cmdline })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_paths() {
        assert_eq!(proc_pid_path(b"/proc/12/exe"), Some((12, &b"exe"[..])));
        assert_eq!(proc_pid_path(b"/proc/self/exe"), None);
        assert_eq!(proc_pid_path(b"/etc/passwd"), None);
    }

    #[test]
    fn parses_maps_lines() {
        let m =
            maps_line("7f00001000-7f00003000 r-xs 0015a000 00:01 4242   /memfd:bt-run-code-cache (deleted)").unwrap();
        assert_eq!(
            (m.start, m.end, m.perms, m.offset, m.dev, m.inode),
            (0x7f00001000, 0x7f00003000, "r-xs", 0x15a000, "00:01", 4242)
        );
        assert_eq!(m.name, "/memfd:bt-run-code-cache (deleted)");
        assert!(m.executable());
        let anon = maps_line("55550000-55551000 rw-p 00000000 00:00 0 ").unwrap();
        assert_eq!((anon.inode, anon.name.as_str(), anon.executable()), (0, "", false));
        assert_eq!(maps_line("7ffd1000-7ffd3000 r-xp 00000000 00:00 0  [vdso]").unwrap().name, "[vdso]");
        assert!(maps_line("garbage").is_none());
    }
}
