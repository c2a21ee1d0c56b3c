//! The ELF loader: opens the program (following `#!` lines like the kernel),
//! maps it and its PT_INTERP into this process as guest memory, and builds
//! the guest's initial stack and auxv, so the dispatcher can start at `entry`.

pub mod elf;
#[allow(unsafe_code)]
pub(crate) mod map;
pub mod script;
pub mod stack;

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use translator::GuestAddr;

use self::elf::{ElfError, LoadPlan, PAGE_SIZE};
use self::map::{MapError, MappedImage, StackMapping};
use self::stack::{AuxInputs, StackInputs};

/// How many nested `#!` interpreters are followed (the kernel allows 4 levels
/// of binfmt rewrites before ELOOP).
const MAX_SCRIPT_DEPTH: usize = 4;
/// Stack size when RLIMIT_STACK is unlimited.
const DEFAULT_STACK: u64 = 8 << 20;
const MIN_STACK: u64 = 128 << 10;
const MAX_STACK: u64 = 1 << 30;
/// Range of the brk randomization on x86-64 (arch_randomize_brk).
const BRK_RANDOM_RANGE: u64 = 32 << 20;

/// What to run.
#[derive(Debug, Clone, Copy)]
pub struct LoadRequest<'a> {
    /// The program as the user gave it (also the AT_EXECFN string).
    pub path: &'a Path,
    pub argv: &'a [OsString],
    pub envp: &'a [OsString],
    /// Where a position-independent main program goes: a band [lo, hi)
    /// (isolation's, `isolate::EXEC_SAFE_BAND`), or where the kernel puts
    /// mappings.
    pub main_within: Option<(u64, u64)>,
    /// Where the interpreter and the initial stack go: a band [lo, hi)
    /// (isolation's, `guest_space::GUEST_BAND`), or where the kernel puts
    /// mappings.
    pub rest_within: Option<(u64, u64)>,
}

/// One guest mapping made by the loader, with the guest's view of its
/// protection (PROT_READ | PROT_WRITE | PROT_EXEC). The host mapping never
/// has PROT_EXEC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub start: GuestAddr,
    pub end: GuestAddr,
    pub prot: i32,
}

/// A program mapped and ready to run.
#[derive(Debug, Clone)]
pub struct LoadedProgram {
    /// First guest pc: the interpreter's entry with PT_INTERP, else the
    /// program's (biased) e_entry.
    pub entry: GuestAddr,
    /// Initial rsp, pointing at argc.
    pub stack_pointer: GuestAddr,
    /// Where the guest's program break starts (page-aligned).
    pub brk_start: GuestAddr,
    /// Every guest mapping the loader made, sorted by address.
    pub regions: Vec<Region>,
    /// Load bias of the main program (0 for ET_EXEC).
    pub main_bias: u64,
    /// AT_BASE: load bias of the interpreter, if any.
    pub interp_base: Option<u64>,
    /// AT_PHDR: the main program's headers in guest memory.
    pub phdr: GuestAddr,
    /// The stack mapping (also in `regions`).
    pub stack: Region,
    /// AT_ENTRY: the main program's own (biased) entry point.
    pub main_entry: GuestAddr,
    /// The ELF file actually mapped as the main program (for a script, its
    /// interpreter), as /proc/self/exe would name it natively.
    pub exe_path: PathBuf,
}

/// Why a program cannot be loaded. Displays as "PATH: reason".
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{}: No such file or directory", path.display())]
    NotFound { path: PathBuf },
    #[error("{}: cannot execute: required file not found (interpreter {} does not exist)", path.display(), interp.display())]
    InterpreterNotFound { path: PathBuf, interp: PathBuf },
    #[error("{}: Permission denied", path.display())]
    PermissionDenied { path: PathBuf },
    #[error("{}: {reason}", path.display())]
    NotExecutable { path: PathBuf, reason: String },
    #[error("{}: {reason}", path.display())]
    MapFailed { path: PathBuf, reason: String },
}

impl LoadError {
    /// Conventional shell exit status: 127 not found, 126 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            LoadError::NotFound { .. } | LoadError::InterpreterNotFound { .. } => 127,
            _ => 126,
        }
    }
}

/// Loads the program of `req` into this process as guest memory.
pub fn load(req: &LoadRequest) -> Result<LoadedProgram, LoadError> {
    let mut argv: Vec<OsString> = req.argv.to_vec();
    let mut path = req.path.to_path_buf();
    let mut script: Option<PathBuf> = None;
    for depth in 0..=MAX_SCRIPT_DEPTH {
        let (file, len) = match (open_executable(&path), &script) {
            (Ok(f), _) => f,
            (Err(e), None) => return Err(e.into_error(&path)),
            (Err(e), Some(s)) => {
                return Err(LoadError::NotExecutable {
                    path: s.clone(),
                    reason: format!("{}: bad interpreter: {}", path.display(), e.reason()),
                });
            }
        };
        let head = read_at(&file, 0, len.min(script::SCRIPT_HEAD_LEN as u64) as usize)
            .map_err(|e| not_exec(&path, io_reason(&e)))?;
        if !script::is_script(&head) {
            return load_elf(req, path, &file, len, &argv);
        }
        if depth == MAX_SCRIPT_DEPTH {
            return Err(not_exec(req.path, "too many levels of #! interpreters".into()));
        }
        let sb = script::parse_shebang(&head).map_err(|e| not_exec(&path, e.to_string()))?;
        argv = script::interpreter_argv(&sb, path.as_os_str(), &argv);
        script = Some(std::mem::replace(&mut path, PathBuf::from(&sb.interp)));
    }
    Err(not_exec(req.path, "too many levels of #! interpreters".into()))
}

/// Loads an ELF main program (and its interpreter) whose file is open.
fn load_elf(
    req: &LoadRequest,
    path: PathBuf,
    file: &File,
    len: u64,
    argv: &[OsString],
) -> Result<LoadedProgram, LoadError> {
    let plan = parse_file(file, len).map_err(|e| not_exec(&path, e.to_string()))?;
    let interp = match &plan.interp {
        None => None,
        Some(ip) => {
            let (ifile, ilen) = open_executable(ip).map_err(|e| match e {
                OpenError::NotFound => LoadError::InterpreterNotFound { path: path.clone(), interp: ip.clone() },
                other => other.into_error(ip),
            })?;
            let iplan = parse_file(&ifile, ilen).map_err(|e| not_exec(ip, e.to_string()))?;
            Some((ip.clone(), ifile, iplan))
        }
    };
    let main = map::map_image(file, &plan, req.main_within).map_err(map_err(&path))?;
    let interp_img: Option<(MappedImage, &LoadPlan)> = match &interp {
        None => None,
        Some((ip, ifile, iplan)) => Some((map::map_image(ifile, iplan, req.rest_within).map_err(map_err(ip))?, iplan)),
    };

    let main_entry = GuestAddr::new(plan.entry.wrapping_add(main.bias));
    let entry = match &interp_img {
        Some((img, iplan)) => GuestAddr::new(iplan.entry.wrapping_add(img.bias)),
        None => main_entry,
    };
    let interp_base = interp_img.as_ref().map(|(img, _)| img.bias);
    let phdr = GuestAddr::new(plan.phdr_vaddr.wrapping_add(main.bias));

    let randomize = randomize_level();
    let mut rnd = [0u8; 32];
    map::fill_random(&mut rnd).map_err(map_err(&path))?;
    let rnd_word = |i: usize| {
        let mut w = [0u8; 8];
        w.copy_from_slice(&rnd[16 + 8 * i..24 + 8 * i]);
        u64::from_le_bytes(w)
    };
    let mut brk = plan.max_vaddr.wrapping_add(main.bias);
    if randomize >= 2 {
        brk += (rnd_word(0) % (BRK_RANDOM_RANGE / PAGE_SIZE)) * PAGE_SIZE;
    }

    let rlimit_stack = map::stack_rlimit();
    let stack_size = rlimit_stack.unwrap_or(DEFAULT_STACK).clamp(MIN_STACK, MAX_STACK);
    let (uid, euid, gid, egid) = map::host_ids();
    let host = host_auxv();
    let aux = AuxInputs {
        sysinfo_ehdr: host_aux(&host, stack::AT_SYSINFO_EHDR),
        minsigstksz: host_aux(&host, stack::AT_MINSIGSTKSZ),
        hwcap: host_aux(&host, stack::AT_HWCAP),
        hwcap2: host_aux(&host, stack::AT_HWCAP2),
        pagesz: Some(host_aux(&host, stack::AT_PAGESZ)).filter(|&v| v != 0).unwrap_or(PAGE_SIZE),
        clktck: Some(host_aux(&host, stack::AT_CLKTCK)).filter(|&v| v != 0).unwrap_or(100),
        phdr,
        phnum: u64::from(plan.phnum),
        base: interp_base.unwrap_or(0),
        entry: main_entry,
        uid,
        euid,
        gid,
        egid,
    };
    let mut random = [0u8; 16];
    random.copy_from_slice(&rnd[..16]);
    let inputs = StackInputs {
        execfn: req.path.as_os_str(),
        argv,
        envp: req.envp,
        aux,
        random,
        align_pad: if randomize >= 1 { rnd_word(1) % 8192 } else { 0 },
        stack_size,
        arg_limit: stack::arg_limit(rlimit_stack),
    };
    let mut stack_map = StackMapping::new(stack_size, req.rest_within).map_err(map_err(&path))?;
    let image = stack::build(stack_map.end(), &inputs).map_err(|e| not_exec(req.path, e.to_string()))?;
    stack_map.write_top(&image.bytes).map_err(map_err(&path))?;
    let stack_prot = libc::PROT_READ | libc::PROT_WRITE | if plan.exec_stack { libc::PROT_EXEC } else { 0 };
    let stack_region = Region { start: stack_map.start(), end: stack_map.end(), prot: stack_prot };

    // Nothing can fail any more: keep the mappings.
    let main_bias = main.bias;
    let mut regions = main.commit();
    if let Some((img, _)) = interp_img {
        regions.extend(img.commit());
    }
    stack_map.commit();
    regions.push(stack_region);
    regions.sort_by_key(|r| r.start);
    Ok(LoadedProgram {
        entry,
        stack_pointer: image.sp,
        brk_start: GuestAddr::new(brk),
        regions,
        main_bias,
        interp_base,
        phdr,
        stack: stack_region,
        main_entry,
        exe_path: std::fs::canonicalize(&path).unwrap_or(path),
    })
}

/// Why opening an executable failed, before knowing whose error it is.
enum OpenError {
    NotFound,
    Denied,
    Other(String),
}

impl OpenError {
    fn reason(&self) -> String {
        match self {
            OpenError::NotFound => "No such file or directory".into(),
            OpenError::Denied => "Permission denied".into(),
            OpenError::Other(s) => s.clone(),
        }
    }

    fn into_error(self, path: &Path) -> LoadError {
        let path = path.to_path_buf();
        match self {
            OpenError::NotFound => LoadError::NotFound { path },
            OpenError::Denied => LoadError::PermissionDenied { path },
            OpenError::Other(reason) => LoadError::NotExecutable { path, reason },
        }
    }
}

/// Opens `path` with the checks execve makes: exists, regular file,
/// executable by us, not on a noexec mount. Returns the file and its length.
fn open_executable(path: &Path) -> Result<(File, u64), OpenError> {
    let classify = |e: io::Error| match e.kind() {
        io::ErrorKind::NotFound => OpenError::NotFound,
        io::ErrorKind::PermissionDenied => OpenError::Denied,
        _ => OpenError::Other(io_reason(&e)),
    };
    let file = File::open(path).map_err(classify)?;
    let meta = file.metadata().map_err(classify)?;
    if meta.is_dir() {
        return Err(OpenError::Other("Is a directory".into()));
    }
    if !meta.is_file() {
        return Err(OpenError::Denied);
    }
    map::may_execute(path).map_err(classify)?;
    if map::on_noexec_mount(&file) {
        return Err(OpenError::Denied);
    }
    Ok((file, meta.len()))
}

/// Parses an open file, reading only the bounded parts the parser asks for.
fn parse_file(file: &File, len: u64) -> Result<LoadPlan, ElfError> {
    LoadPlan::parse_with(len, |off, n| {
        read_at(file, off, n).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => ElfError::Truncated(format!("{n} bytes at {off:#x}")),
            _ => ElfError::Read(io_reason(&e)),
        })
    })
}

fn read_at(file: &File, off: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, off)?;
    Ok(buf)
}

/// An io::Error as a shell would print it (without "(os error N)").
pub(crate) fn io_reason(e: &io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// A mapping failure of the file at `path`, for `map_err`.
fn map_err(path: &Path) -> impl Fn(MapError) -> LoadError + '_ {
    move |e| LoadError::MapFailed { path: path.to_path_buf(), reason: e.0 }
}

fn not_exec(path: &Path, reason: String) -> LoadError {
    LoadError::NotExecutable { path: path.to_path_buf(), reason }
}

/// bt-run's own auxiliary vector as the kernel gave it (/proc/self/auxv).
/// Empty if unreadable. Preferred over getauxval, which glibc rewrites for
/// some keys (AT_HWCAP on x86-64 returns glibc's HWCAP_X86_64 bits).
fn host_auxv() -> Vec<(u64, u64)> {
    let bytes = std::fs::read("/proc/self/auxv").unwrap_or_default();
    let word = |c: &[u8]| {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        u64::from_le_bytes(w)
    };
    bytes.chunks_exact(16).map(|c| (word(&c[..8]), word(&c[8..]))).take_while(|&(k, _)| k != stack::AT_NULL).collect()
}

/// One value of the host auxv, falling back to getauxval when
/// /proc/self/auxv could not be read; 0 when absent.
fn host_aux(host: &[(u64, u64)], key: u64) -> u64 {
    if host.is_empty() {
        return map::host_auxval(key);
    }
    host.iter().find(|e| e.0 == key).map_or(0, |e| e.1)
}

/// The kernel's randomize_va_space (0, 1 or 2), 0 under ADDR_NO_RANDOMIZE.
fn randomize_level() -> u8 {
    if map::personality_no_randomize() {
        return 0;
    }
    std::fs::read_to_string("/proc/sys/kernel/randomize_va_space").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(2)
}

#[cfg(test)]
mod tests;
