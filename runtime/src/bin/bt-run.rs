//! The `bt-run` command: parse the command line (`runtime::cli`), load the program, run it under
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

use runtime::{Launch, cli, own_fds};

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

fn run(args: Vec<OsString>, adopted: bool) -> i32 {
    let cli = match cli::parse(&args) {
        Ok(cli::Parsed::Run(cli)) => *cli,
        Ok(cli::Parsed::Print(text)) => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            return if out.write_all(&text).and_then(|()| out.flush()).is_ok() { 0 } else { 1 };
        }
        Err(e) => {
            own_fds::diag(&format!("bt-run: {e}\n"));
            return cli::USAGE_ERROR;
        }
    };
    let path = resolve(&cli.prog);
    let mut argv = vec![cli.argv0.clone().unwrap_or_else(|| cli.prog.clone())];
    argv.extend(cli.args.iter().cloned());
    let e = runtime::start::start(Launch { path, argv, envp: runtime::start::environment(), opts: cli.opts, adopted });
    own_fds::diag(&format!("bt-run: {e}\n"));
    e.exit_code()
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
    run(args, adopted)
}
