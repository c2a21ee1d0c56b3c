//! The `bt-run` command line: parse options, load the program, run it under
//! translation, and leave the process exactly as the guest left it (its exit
//! status, or death by its signal).
//!
//! `no_main`: Rust's usual start-up would set SIGPIPE to ignored (and add
//! signal handlers of its own), and the guest must inherit the dispositions
//! bt-run was started with, as it would from a plain exec.
#![no_main]
#![deny(unsafe_code)]

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use runtime::{Launch, Options, own_fds, perf_map};

const USAGE: &str = "\
Usage: bt-run [OPTIONS] [--] PROG [ARGS...]

Run PROG, an unmodified x86-64 Linux program, under dynamic binary
translation: every instruction executes from bt-run's code cache and every
system call passes through bt-run's in-process syscall layer.

Options:
  --stats[=json]     print code-cache and per-syscall statistics at exit
  --trace[=SET]      print each system call strace-style; SET as strace's
                     -e trace= (names, %file %desc %network %process
                     %signal %memory ..., !negation; default all)
  --deny NAME[=ERRNO|kill]
                     make syscall NAME fail with ERRNO (default EPERM) or
                     kill the program with SIGSYS (repeatable); a name or
                     number selects the x86-64 call and the i386 call
                     (int $0x80) of that name or number, as in strace
  --policy FILE      read deny/allow rules from FILE, one per line:
                     `deny NAME[=ERRNO|kill]` or `allow NAME`
  --isolate          install a seccomp filter before the program runs that
                     lets system calls reach the kernel only from bt-run's
                     own code, as the run's syscall table allows, and kills
                     the program with a one-line report otherwise (on
                     whenever --deny or --policy is given)
  --no-inline        forward every syscall to the kernel, even those bt-run
                     can answer in-process (getpid, getuid, ...)
  -o FILE            write trace lines and statistics to FILE (appended)
                     instead of bt-run's stderr; either way the program
                     cannot see or touch where they go
  --own-fds OUT,ERR  (used by bt-run itself across execve) take over open
                     descriptors OUT for trace lines and statistics and ERR
                     for bt-run's messages (- for none)
  --isolated=N:RANGES (used by bt-run itself across execve) the address
                     ranges older images' isolation filters name, which
                     this image must land clear of
  --no-follow        let programs started by execve run natively
  --argv0 NAME       pass NAME as the guest's argv[0] (default: PROG)
  --cache-size MIB   code cache size in MiB (default 256)
  --perf-map[=insns] name translated code for `perf report` in
                     /tmp/perf-PID.map: each block by its guest place
                     (file+offset), or with =insns each translated
                     instruction, entry check and exit stubs
  --far-cache        place the code cache far from guest code (testing)
  --code-offset N    start translated code N bytes (a multiple of 16 below
                     4096) into the code cache: the same translations at
                     another place, to measure how much a workload's speed
                     depends on where its code lands (bench/run.sh does)
  -h, --help         show this help
  -V, --version      show the version

strace's spellings, with strace's meaning:
  -e trace=SET, -e SET
                     as --trace=SET
  -e inject=SET:error=ERRNO, -e fault=SET[:error=ERRNO]
                     as --deny NAME=ERRNO for each call in SET (fault's
                     error is ENOSYS unless given); other injection keys
                     (retval=, signal=, when=, delays) are refused
  -c, --summary-only print strace -c's table at exit (per process image:
                     % time, seconds, usecs/call, calls, errors, syscall,
                     the time being that of the kernel call as bt-run saw
                     it), and how many calls were answered in-process
  -C, --summary      the trace lines as well as the table
  -T, --syscall-times
                     end each trace line with the call's time, <S.UUUUUU>
  -t, -tt, -ttt      start each trace line with the time of day (with
                     microseconds), or seconds since the epoch
  -r                 start each trace line with the time since the
                     previous call began
  -y, --decode-fds   show what each descriptor refers to: 3</etc/passwd>
  -s STRSIZE         cut strings in trace lines after STRSIZE bytes
                     (default 32)
  -f                 accepted: programs started by fork, clone and execve
                     are always followed
  -q, -qq            accepted: bt-run prints no attach or exit messages
  -p PID             refused: bt-run runs the program it starts, it cannot
                     attach to a running one
";

struct Cli {
    opts: Options,
    argv0: Option<OsString>,
    prog: OsString,
    args: Vec<OsString>,
}

enum Parsed {
    Run(Box<Cli>),
    Exit(i32),
}

fn parse(args: &[OsString]) -> Result<Parsed> {
    let mut opts = Options::default();
    let mut argv0 = None;
    let mut trace: Option<String> = None;
    let mut deny: Vec<String> = Vec::new();
    let mut policy: Option<PathBuf> = None;
    // -C: trace lines as well as the summary (every call unless -e trace=).
    let mut summary_traces = false;
    // -c's trace set, for a re-executed bt-run.
    let mut inherit_only: Option<String> = None;
    let mut string_limit: Option<usize> = None;
    let mut decode_fds = false;
    let mut i = 1;
    while i < args.len() {
        let a = args[i].as_bytes();
        let value = |i: usize| -> Result<&OsString> {
            args.get(i + 1).with_context(|| format!("option {} needs a value", String::from_utf8_lossy(a)))
        };
        match a {
            b"--" => {
                i += 1;
                break;
            }
            b"-h" | b"--help" => {
                print!("{USAGE}");
                return Ok(Parsed::Exit(0));
            }
            b"-V" | b"--version" => {
                println!("bt-run {}", env!("CARGO_PKG_VERSION"));
                return Ok(Parsed::Exit(0));
            }
            b"--stats" => opts.stats = true,
            b"--stats=json" => {
                opts.stats = true;
                opts.stats_json = true;
            }
            b"-c" | b"--summary-only" => {
                opts.stats = true;
                opts.summary = true;
                summary_traces = false;
            }
            b"-C" | b"--summary" => {
                opts.stats = true;
                opts.summary = true;
                summary_traces = true;
            }
            b"-s" | b"--string-limit" => {
                let v = value(i)?.to_string_lossy().to_string();
                let n: usize = v
                    .parse()
                    .ok()
                    .filter(|&n| n <= 1 << 20)
                    .with_context(|| format!("invalid -s '{v}' (a string size up to 1048576)"))?;
                syscall_inline::trace::set_max_strlen(n);
                string_limit = Some(n);
                i += 1;
            }
            b"-T" | b"--syscall-times" => {
                opts.observers.timed = true;
                opts.observers.show_times = true;
            }
            b"-y" | b"--decode-fds" => {
                runtime::observe::decode_fds();
                decode_fds = true;
            }
            b"-t" => opts.observers.stamps = syscall_inline::layer::Stamps::Seconds,
            b"-tt" => opts.observers.stamps = syscall_inline::layer::Stamps::Micros,
            b"-ttt" => opts.observers.stamps = syscall_inline::layer::Stamps::Epoch,
            b"-r" | b"--relative-timestamps" => opts.observers.stamps = syscall_inline::layer::Stamps::Relative,
            b"--no-follow" => opts.no_follow = true,
            b"--isolate" => opts.isolate = true,
            _ if a.starts_with(b"--isolated=") => {
                let v = String::from_utf8_lossy(&a[11..]);
                opts.isolated_from = runtime::isolate::Inherited::parse(&v).map_err(|e| anyhow::anyhow!(e))?;
                opts.isolate = true;
            }
            b"--no-inline" => opts.no_inline = true,
            b"--trace" => trace = Some("all".to_string()),
            _ if a.starts_with(b"--trace=") => trace = Some(String::from_utf8_lossy(&a[8..]).into_owned()),
            b"--deny" => {
                deny.push(value(i)?.to_string_lossy().into_owned());
                i += 1;
            }
            _ if a.starts_with(b"--deny=") => deny.push(String::from_utf8_lossy(&a[7..]).into_owned()),
            b"--policy" => {
                policy = Some(PathBuf::from(value(i)?));
                i += 1;
            }
            b"--far-cache" => opts.far_cache = true,
            b"--perf-map" => opts.perf_map = Some(perf_map::Detail::Blocks),
            _ if a.starts_with(b"--perf-map=") => {
                let v = String::from_utf8_lossy(&a[11..]);
                opts.perf_map = Some(perf_map::Detail::parse(Some(&v)).map_err(|e| anyhow::anyhow!(e))?);
            }
            b"-o" => {
                opts.output = Some(PathBuf::from(value(i)?));
                i += 1;
            }
            b"--own-fds" => {
                // Taken over in `main` already.
                value(i)?;
                if i != 1 {
                    bail!("invalid --own-fds: it must be the first option");
                }
                i += 1;
            }
            b"--argv0" => {
                argv0 = Some(value(i)?.clone());
                i += 1;
            }
            b"--code-offset" => {
                let v = value(i)?.to_string_lossy().to_string();
                opts.code_offset = v
                    .parse()
                    .ok()
                    .filter(|n: &usize| *n < 4096 && n.is_multiple_of(16))
                    .with_context(|| format!("invalid --code-offset '{v}' (a multiple of 16 below 4096)"))?;
                i += 1;
            }
            b"--cache-size" => {
                let v = value(i)?.to_string_lossy().to_string();
                let mib: usize = v
                    .parse()
                    .ok()
                    .filter(|m| (1..=1024).contains(m))
                    .with_context(|| format!("invalid --cache-size '{v}' (1..1024 MiB)"))?;
                opts.cache_size = mib << 20;
                i += 1;
            }
            b"-e" => {
                let v = value(i)?.to_string_lossy().into_owned();
                strace_expr(&v, &mut trace, &mut deny)?;
                i += 1;
            }
            _ if a.starts_with(b"-e") => strace_expr(&String::from_utf8_lossy(&a[2..]), &mut trace, &mut deny)?,
            // Children are always followed; there are no attach messages.
            b"-f" | b"-q" | b"-qq" => {}
            b"-ff" => bail!(
                "invalid -ff: one output file per process is not supported (bt-run's -o file has every process's lines, each with its pid)"
            ),
            _ if a.starts_with(b"-p") || a.starts_with(b"--attach") => {
                bail!("invalid -p: bt-run cannot attach to a running process (it translates the programs it starts)")
            }
            _ if a.starts_with(b"-") && a.len() > 1 => bail!("unknown option '{}'", String::from_utf8_lossy(a)),
            _ => break,
        }
        i += 1;
    }
    let Some(prog) = args.get(i).cloned() else {
        own_fds::diag(&format!("bt-run: no program given\n{USAGE}"));
        return Ok(Parsed::Exit(2));
    };
    // Observation: trace set, deny rules (command line after the file).
    let mut rules = Vec::new();
    if let Some(f) = &policy {
        let text = std::fs::read_to_string(f).with_context(|| format!("cannot read policy file {}", f.display()))?;
        rules = syscall_inline::parse_policy(&text).map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))?;
    }
    for d in &deny {
        let (call, action) = syscall_inline::parse_deny(d).map_err(|e| anyhow::anyhow!("invalid --deny '{d}': {e}"))?;
        rules.push(syscall_inline::PolicyRule::Deny { call, action });
    }
    if !rules.is_empty() {
        // A policy is only as good as what stops the program going around it.
        opts.isolate = true;
    }
    if opts.isolate {
        // io_uring's operations reach files and memory without system
        // calls the layer sees: as on a kernel without io_uring. The same
        // for userfaultfd's copies into memory, and for the mappings the
        // kernel places itself where the runtime cannot choose (io_setup's
        // ring, a shadow stack), which would land beside bt-run's memory
        // (see `guest_space`).
        for name in
            ["io_uring_setup", "io_uring_enter", "io_uring_register", "io_setup", "userfaultfd", "map_shadow_stack"]
        {
            let call = syscall_inline::policy::syscall_by_name(name).map_err(|e| anyhow::anyhow!(e))?;
            rules.push(syscall_inline::PolicyRule::Deny {
                call,
                action: syscall_inline::DenyAction::Errno(libc::ENOSYS),
            });
        }
        opts.observers.policy = Some(std::sync::Arc::new(syscall_inline::policy::Policy::new(&rules)));
    }
    if opts.summary {
        opts.observers.timed = true;
        if summary_traces && trace.is_none() {
            trace = Some("all".to_string());
        }
        // A trace set selects the calls the table counts, as in strace.
        if let Some(t) = &trace {
            opts.summary_only =
                Some(syscall_inline::TraceSet::parse(t).map_err(|e| anyhow::anyhow!("invalid --trace '{t}': {e}"))?);
        }
        if !summary_traces && let Some(t) = trace.take() {
            // -c: the table only, as strace -c prints no trace lines.
            inherit_only = Some(t);
        }
    }
    if let Some(t) = &trace {
        opts.observers.trace =
            Some(syscall_inline::TraceSet::parse(t).map_err(|e| anyhow::anyhow!("invalid --trace '{t}': {e}"))?);
    }
    // Options a re-executed bt-run must keep (output goes to the same place).
    let mut inherit = Vec::new();
    if opts.summary {
        inherit.push(OsString::from(if summary_traces { "-C" } else { "-c" }));
        if let Some(t) = &inherit_only {
            inherit.push(format!("--trace={t}").into());
        }
    } else if opts.stats {
        inherit.push(OsString::from(if opts.stats_json { "--stats=json" } else { "--stats" }));
    }
    if let Some(t) = &trace {
        inherit.push(format!("--trace={t}").into());
    }
    for d in &deny {
        inherit.push(format!("--deny={d}").into());
    }
    if let Some(f) = &policy {
        inherit.push("--policy".into());
        inherit.push(std::path::absolute(f).unwrap_or_else(|_| f.clone()).into_os_string());
    }
    if opts.no_inline {
        inherit.push("--no-inline".into());
    }
    if opts.observers.show_times {
        inherit.push("-T".into());
    }
    if decode_fds {
        inherit.push("-y".into());
    }
    match opts.observers.stamps {
        syscall_inline::layer::Stamps::None => {}
        syscall_inline::layer::Stamps::Seconds => inherit.push("-t".into()),
        syscall_inline::layer::Stamps::Micros => inherit.push("-tt".into()),
        syscall_inline::layer::Stamps::Epoch => inherit.push("-ttt".into()),
        syscall_inline::layer::Stamps::Relative => inherit.push("-r".into()),
    }
    if let Some(n) = string_limit {
        inherit.push("-s".into());
        inherit.push(n.to_string().into());
    }
    if opts.isolate {
        if opts.no_follow {
            bail!(
                "invalid --no-follow: programs run natively would be outside the isolation --isolate, --deny and --policy need"
            );
        }
        // (`--isolated=`, the ranges of this image's filter, is added at
        // the exec, once they are known.)
        inherit.push("--isolate".into());
    }
    // (Output: a re-executed bt-run takes over this one's descriptors, see
    // `own_fds::ExecGuard`.)
    if opts.far_cache {
        inherit.push("--far-cache".into());
    }
    if let Some(d) = opts.perf_map {
        inherit.push(d.option().into());
    }
    if opts.code_offset != 0 {
        inherit.push("--code-offset".into());
        inherit.push(opts.code_offset.to_string().into());
    }
    if opts.cache_size != 0 {
        inherit.push("--cache-size".into());
        inherit.push((opts.cache_size >> 20).to_string().into());
    }
    opts.inherit = inherit;
    Ok(Parsed::Run(Box::new(Cli { opts, argv0, prog, args: args[i + 1..].to_vec() })))
}

/// One strace `-e` expression: `trace=SET` (or a bare SET) selects the
/// traced calls, as `--trace=SET`; `inject=SET:error=ERRNO` and
/// `fault=SET[:error=ERRNO]` deny each call of SET, as `--deny`. Later
/// trace sets replace earlier ones, as `--trace` does.
fn strace_expr(expr: &str, trace: &mut Option<String>, deny: &mut Vec<String>) -> Result<()> {
    let (qualifier, value) = match expr.split_once('=') {
        Some((q, v)) if !q.contains(',') && !q.starts_with('!') && !q.starts_with('%') => (q, v),
        _ => ("trace", expr),
    };
    match qualifier {
        "trace" | "t" => {
            syscall_inline::TraceSet::parse(value).map_err(|e| anyhow::anyhow!("invalid -e '{expr}': {e}"))?;
            *trace = Some(value.to_string());
        }
        "inject" | "fault" => {
            let specs = syscall_inline::policy::inject_as_denials(value, qualifier == "fault")
                .map_err(|e| anyhow::anyhow!("invalid -e '{expr}': {e}"))?;
            deny.extend(specs);
        }
        q => bail!("invalid -e '{expr}': strace's '{q}=' qualifier is not supported (trace=, inject= and fault= are)"),
    }
    Ok(())
}

/// PROG as given if it names a path, else the first match on $PATH.
fn resolve(prog: &OsStr) -> PathBuf {
    if prog.as_bytes().contains(&b'/') {
        return PathBuf::from(prog);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let cand = dir.join(prog);
            if cand.is_file() {
                return cand;
            }
        }
    }
    PathBuf::from(prog)
}

fn run(args: Vec<OsString>, adopted: bool) -> Result<i32> {
    let cli = match parse(&args)? {
        Parsed::Exit(code) => return Ok(code),
        Parsed::Run(cli) => *cli,
    };
    let path = resolve(&cli.prog);
    let mut argv = vec![cli.argv0.clone().unwrap_or_else(|| cli.prog.clone())];
    argv.extend(cli.args.iter().cloned());
    let e = runtime::start::start(Launch { path, argv, envp: runtime::start::environment(), opts: cli.opts, adopted });
    own_fds::diag(&format!("bt-run: {e}\n"));
    Ok(e.exit_code())
}

// The C runtime's `main` (see `no_main` above): the only unsafe attribute
// of the binary.
#[allow(unsafe_code)]
#[unsafe(no_mangle)]
pub extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    let args: Vec<OsString> = std::env::args_os().collect();
    // bt-run's own messages (a panic's too) never go to the guest's stderr.
    std::panic::set_hook(Box::new(|info| own_fds::diag(&format!("bt-run: {info}\n"))));
    // Under an older image's isolation filter, land clear of its rules
    // first (this may execute bt-run again).
    if let Err(e) = runtime::isolate::settle_after_exec(&args) {
        own_fds::diag(&format!("bt-run: {e}\n"));
        return 125;
    }
    // A bt-run re-executed by bt-run takes over its descriptors first (the
    // option comes first then).
    let mut adopted = false;
    if let (Some(opt), Some(spec)) = (args.get(1), args.get(2))
        && opt == "--own-fds"
    {
        if let Err(e) = own_fds::adopt(&spec.to_string_lossy()) {
            own_fds::diag(&format!("bt-run: {e}\n"));
            return 2;
        }
        adopted = true;
    }
    match run(args, adopted) {
        Ok(code) => code,
        Err(e) => {
            own_fds::diag(&format!("bt-run: {e:#}\n"));
            let m = e.to_string();
            if m.starts_with("unknown option")
                || m.contains("needs a value")
                || m.starts_with("invalid -")
                || m.contains("policy")
            {
                2
            } else {
                125
            }
        }
    }
}
