//! Running an engine's program as a child process: input on stdin, output captured,
//! bounded in time, killed if the caller gives up.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::domain::{ErrorKind, PortError};

/// The variables an engine may see of Storytime's environment: where
/// programs and their data are, the locale, and thread limits. Never the
/// Slack token, API keys or cloud credentials.
const ENGINE_VARIABLES: [&str; 12] = [
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TMPDIR",
    "LD_LIBRARY_PATH",
    "TESSDATA_PREFIX",
    "OMP_THREAD_LIMIT",
    "OMP_NUM_THREADS",
    "ESPEAK_DATA_PATH",
    "VIRTUAL_ENV",
];

/// A command for an engine, with a clean environment: only
/// [`ENGINE_VARIABLES`] are passed on.
pub(crate) fn engine_command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut command = Command::new(program);
    command.env_clear();
    for name in ENGINE_VARIABLES {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    command
}

pub(crate) struct Output {
    pub stdout: Vec<u8>,
    pub stderr: String,
    pub success: bool,
}

/// A program Storytime runs, with what to tell the operator when it is
/// missing.
#[derive(Debug, Clone)]
pub(crate) struct Program {
    pub program: String,
    /// e.g. "sudo apt-get install tesseract-ocr"
    pub install_hint: &'static str,
    pub timeout: Duration,
}

impl Program {
    pub async fn run(&self, args: &[&str], envs: &[(&str, &str)], input: Vec<u8>) -> Result<Output, PortError> {
        // The engine inherits the priority of the calling thread: the
        // background one, in the workers (see `crate::runtime::priority`).
        let mut child = engine_command(&self.program)
            .args(args)
            .envs(envs.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| self.spawn_error(e))?;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let writer = tokio::spawn(async move {
            // A reader that exits early closes the pipe; its exit status
            // tells the story, so a broken pipe here is not an error.
            let _ = stdin.write_all(&input).await;
            let _ = stdin.shutdown().await;
        });
        let output = tokio::time::timeout(self.timeout, child.wait_with_output())
            .await
            .map_err(|_| PortError::unavailable(&self.program, format!("no answer within {:?}", self.timeout)))?
            .map_err(|e| PortError::unavailable(&self.program, e))?;
        let _ = writer.await;
        // Killed by a signal (a crash, the kernel out of memory): may not
        // happen again, so the work is retried.
        if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&output.status) {
            return Err(PortError::unavailable(&self.program, format!("crashed (signal {signal})")));
        }
        Ok(Output {
            stdout: output.stdout,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            success: output.status.success(),
        })
    }

    /// What the program prints (stdout and stderr) for `args`, for checks
    /// such as `--version`.
    pub async fn output(&self, args: &[&str]) -> Result<String, PortError> {
        let out = self.run(args, &[], Vec::new()).await?;
        Ok(format!("{}{}", String::from_utf8_lossy(&out.stdout), out.stderr))
    }

    fn spawn_error(&self, e: std::io::Error) -> PortError {
        if e.kind() == std::io::ErrorKind::NotFound {
            PortError::new(
                ErrorKind::Missing,
                &self.program,
                format!("`{}` is not installed; {}", self.program, self.install_hint),
            )
        } else {
            PortError::unavailable(&self.program, e)
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn a_program_started_by_a_worker_runs_at_idle_priority() {
        let runtime = crate::runtime::priority::background_runtime().unwrap();
        let program = Program { program: "cat".into(), install_hint: "coreutils", timeout: Duration::from_secs(30) };
        let task = runtime.spawn(async move { program.run(&["/proc/self/stat"], &[], Vec::new()).await });
        let output = runtime.block_on(task).unwrap().unwrap();
        let stat = String::from_utf8(output.stdout).unwrap();
        // Fields after the command name, which ends with ')'; the policy is field 41.
        let fields: Vec<&str> = stat.rsplit_once(')').unwrap().1.split_whitespace().collect();
        assert_eq!(fields[41 - 3], libc::SCHED_IDLE.to_string(), "{stat}");
    }
}
