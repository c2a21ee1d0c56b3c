//! `--perf-map[=insns]`: names for the code cache in the file Linux `perf`
//! reads for code generated at run time, `/tmp/perf-<pid>.map` (one line
//! per symbol: `START SIZE name`, hexadecimal), so that `perf record` of a
//! run under bt-run reports time spent in translated code by guest
//! location instead of as one anonymous cache mapping.
//!
//! Each block is named after its guest address as `module+offset` (the
//! mapped file's name and the offset in the file). With `insns`, every
//! translated guest instruction is a symbol of its own (`module+offset
//! mnemonic`), and so are each block's indirect entry (`[entry check]`,
//! where indirect branches land and check their target) and its exit stubs
//! (`[exit stubs]`), which shows where the time of the translation itself
//! goes: `perf report --sort sym` over the mnemonics gives the split
//! between copied instructions and translated branches.
//!
//! The file is bt-run's own (the guest never sees a descriptor of it: it is
//! opened, appended to and closed whenever 64 KiB of lines are waiting, and
//! at exit and before exec). A forked child writes its own file, starting
//! with the blocks it inherited. After a cache flush, addresses are reused
//! and later lines name them anew; an image that bt-run runs after the
//! guest's execve appends to the same file.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use iced_x86::{Decoder, DecoderOptions, Mnemonic};
use translator::addr::GuestAddr;
use translator::cache::{BlockId, CodeCache};

/// How finely the cache is named.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Detail {
    Blocks,
    Insns,
}

impl Detail {
    /// The option's value (`--perf-map` or `--perf-map=insns`).
    pub fn parse(v: Option<&str>) -> Result<Self, String> {
        match v {
            None => Ok(Self::Blocks),
            Some("insns") => Ok(Self::Insns),
            Some(v) => Err(format!("invalid --perf-map value '{v}' (expected insns or nothing)")),
        }
    }

    /// The option that selects this detail.
    pub fn option(self) -> &'static str {
        match self {
            Self::Blocks => "--perf-map",
            Self::Insns => "--perf-map=insns",
        }
    }
}

/// A mapped file: [start, end) at file offset `off`.
struct Module {
    start: u64,
    end: u64,
    off: u64,
    name: String,
}

/// Lines flushed once this much is waiting.
const FLUSH_AT: usize = 64 << 10;

pub struct PerfMap {
    detail: Detail,
    path: PathBuf,
    pending: String,
    modules: Vec<Module>,
}

impl PerfMap {
    /// This process's map. Lines are appended: an image that bt-run
    /// re-executes after the guest's execve adds its blocks to those of
    /// the images before it (a run's first image starts with `discard_old`).
    pub fn new(detail: Detail) -> Self {
        Self { detail, path: map_path(), pending: String::new(), modules: Vec::new() }
    }

    /// Remove a map left by an earlier process with this pid.
    pub fn discard_old() {
        let _ = std::fs::remove_file(map_path());
    }

    /// In a forked child: a map of its own, naming the blocks it inherited.
    pub fn after_fork(&mut self, cache: &CodeCache) {
        Self::discard_old();
        *self = Self::new(self.detail);
        for id in cache.block_ids() {
            self.block(cache, id, None);
        }
    }

    /// Name block `id`; `guest` is its guest code (read from the block's
    /// own address when not given).
    pub fn block(&mut self, cache: &CodeCache, id: BlockId, guest: Option<&[u8]>) {
        let b = cache.block(id);
        let (start, len) = (b.start.get(), b.len as u64);
        let place = self.place(b.guest);
        match self.detail {
            Detail::Blocks => {
                let _ = writeln!(self.pending, "{start:x} {len:x} {place}");
            }
            Detail::Insns => {
                let stubs = cache.stubs_offset(id).unwrap_or(b.len) as u64;
                let first = b.insn_map.first().map_or(stubs, |&(c, _)| c as u64);
                let _ = writeln!(self.pending, "{start:x} {first:x} {place} [entry check]");
                let mut read;
                let code = match guest {
                    Some(g) => g,
                    None => {
                        read = vec![0u8; b.guest_len as usize];
                        if crate::sys::read_guest(b.guest, &mut read).is_err() {
                            read.clear();
                        }
                        &read
                    }
                };
                for (k, &(c, g)) in b.insn_map.iter().enumerate() {
                    let end = b.insn_map.get(k + 1).map_or(stubs, |&(n, _)| n as u64);
                    if end <= c as u64 {
                        continue;
                    }
                    let pc = b.guest.get() + g as u64;
                    let m = code.get(g as usize..).map_or(Mnemonic::INVALID, |bytes| {
                        Decoder::with_ip(64, bytes, pc, DecoderOptions::NONE).decode().mnemonic()
                    });
                    let place = self.place(GuestAddr(pc));
                    let _ = writeln!(self.pending, "{:x} {:x} {place} {m:?}", start + c as u64, end - c as u64);
                }
                if stubs < len {
                    let _ = writeln!(self.pending, "{:x} {:x} {place} [exit stubs]", start + stubs, len - stubs);
                }
            }
        }
        if self.pending.len() >= FLUSH_AT {
            self.flush();
        }
    }

    /// Append what is waiting to the file.
    pub fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let r = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .and_then(|mut f| f.write_all(self.pending.as_bytes()));
        if let Err(e) = r {
            crate::own_fds::diag(&format!("bt-run: cannot write {}: {e}\n", self.path.display()));
        }
        self.pending.clear();
    }

    /// `module+offset` for a guest address (`anon+address` outside mapped
    /// files).
    fn place(&mut self, pc: GuestAddr) -> String {
        let pc = pc.get();
        let find = |ms: &[Module]| ms.iter().position(|m| m.start <= pc && pc < m.end);
        let i = match find(&self.modules) {
            Some(i) => Some(i),
            None => {
                self.modules = read_modules();
                find(&self.modules)
            }
        };
        match i {
            Some(i) => {
                let m = &self.modules[i];
                format!("{}+{:#x}", m.name, pc - m.start + m.off)
            }
            None => format!("anon+{pc:#x}"),
        }
    }
}

fn map_path() -> PathBuf {
    PathBuf::from(format!("/tmp/perf-{}.map", std::process::id()))
}

/// The file-backed mappings of this process, from /proc/self/maps.
fn read_modules() -> Vec<Module> {
    let Ok(text) = std::fs::read_to_string("/proc/self/maps") else { return Vec::new() };
    text.lines().filter_map(parse_maps_line).collect()
}

/// One line of /proc/<pid>/maps, if it maps a file.
fn parse_maps_line(line: &str) -> Option<Module> {
    let m = crate::procfs::maps_line(line)?;
    if m.inode == 0 || !m.name.starts_with('/') {
        return None;
    }
    let name = m.name.rsplit('/').next().unwrap_or(&m.name).trim_end_matches(" (deleted)").to_string();
    Some(Module { start: m.start, end: m.end, off: m.offset, name })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_lines_name_files_by_base_name() {
        let m =
            parse_maps_line("7f00aa001000-7f00aa0f3000 r-xp 00024000 08:01 1234   /usr/lib/x86_64-linux-gnu/libc.so.6")
                .unwrap();
        assert_eq!((m.start, m.end, m.off, m.name.as_str()), (0x7f00aa001000, 0x7f00aa0f3000, 0x24000, "libc.so.6"));
        assert!(parse_maps_line("7ffd1000-7ffd2000 rw-p 00000000 00:00 0   [stack]").is_none());
        assert!(parse_maps_line("7ffd1000-7ffd2000 rw-p 00000000 00:00 0").is_none());
    }

    #[test]
    fn detail_values() {
        assert_eq!(Detail::parse(None), Ok(Detail::Blocks));
        assert_eq!(Detail::parse(Some("insns")), Ok(Detail::Insns));
        assert!(Detail::parse(Some("x")).is_err());
    }
}
