//! Embedding bt-run: run a guest program inside the calling process with a
//! hook that sees (and may rewrite or refuse) every system call it makes —
//! what a DynamoRIO client's syscall events or zpoline's hook function give,
//! without ptrace and without entering the kernel to intercept.
//!
//! ```no_run
//! use std::sync::Arc;
//! use runtime::embed::Guest;
//! use runtime::observe::{HookAction, SyscallEvent, SyscallHook};
//!
//! struct DenyUnlink;
//! impl SyscallHook for DenyUnlink {
//!     fn before(&self, ev: &mut SyscallEvent) -> HookAction {
//!         if ev.name == "unlinkat" { HookAction::Return(-(libc::EPERM as i64)) } else { HookAction::Continue }
//!     }
//! }
//! Guest::new("/bin/rm").arg("/tmp/x").hook(Arc::new(DenyUnlink)).run();
//! ```
//!
//! `run` never returns: the guest takes over the process and its exit status
//! (or death by signal) becomes the process's, exactly as under `bt-run`.

use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::Arc;

use crate::dispatch::Options;
use crate::observe::SyscallHook;

/// A guest program to run, with its arguments, environment and hook.
pub struct Guest {
    path: PathBuf,
    argv: Vec<OsString>,
    envp: Option<Vec<OsString>>,
    opts: Options,
}

impl Guest {
    /// Run `path`; argv[0] is `path` as given.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        Self { argv: vec![path.clone().into_os_string()], path, envp: None, opts: Options::default() }
    }

    pub fn arg(mut self, a: impl Into<OsString>) -> Self {
        self.argv.push(a.into());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, it: I) -> Self {
        self.argv.extend(it.into_iter().map(Into::into));
        self
    }

    /// The guest's environment as `KEY=VALUE` strings (default: ours).
    pub fn env(mut self, envp: Vec<OsString>) -> Self {
        self.envp = Some(envp);
        self
    }

    /// Call `hook` for every system call of the guest (and of its threads).
    pub fn hook(mut self, hook: Arc<dyn SyscallHook>) -> Self {
        self.opts.observers.hook = Some(hook);
        self
    }

    /// Let programs the guest execs run natively (a hook cannot follow them
    /// into a new image anyway; without this they run under plain bt-run).
    pub fn no_follow(mut self) -> Self {
        self.opts.no_follow = true;
        self
    }

    /// Load and run the guest; never returns. Load errors end the process
    /// with bt-run's conventional status (127 not found, 126 not runnable)
    /// after a one-line message.
    pub fn run(self) -> ! {
        let envp = self.envp.unwrap_or_else(crate::start::environment);
        let e = crate::start::start(crate::Launch {
            path: self.path,
            argv: self.argv,
            envp,
            opts: self.opts,
            adopted: false,
        });
        crate::own_fds::diag(&format!("bt-run: {e}\n"));
        std::process::exit(e.exit_code())
    }
}
