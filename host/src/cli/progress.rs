//! Long steps of `kirana build`, `kirana up` and `kirana dev` (a cargo build, a
//! componentize-py build, compiling a component and swapping it in), shown while they
//! run. On a terminal a step is a spinner with its elapsed time, and the tools' output
//! scrolls above it; anywhere else (CI logs, pipes, `kirana dev` under a test) a step is
//! one `==> ...` line when it starts and one when it ends, and the tools write straight
//! through, so logs stay plain text.

use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// A step under way.
pub struct Step {
    /// The spinner, on a terminal; `None` writes plain lines.
    bar: Option<ProgressBar>,
    started: Instant,
}

impl Step {
    /// Starts a step saying `what` (e.g. `hello: building`): a spinner when standard
    /// error is a terminal, else the line `==> what`.
    pub fn start(what: impl Into<String>) -> Self {
        Self::with_spinner(what.into(), std::io::stderr().is_terminal())
    }

    fn with_spinner(what: String, spinner: bool) -> Self {
        let bar = if spinner {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
                bar.set_style(style);
            }
            bar.set_message(what);
            bar.enable_steady_tick(Duration::from_millis(100));
            Some(bar)
        } else {
            eprintln!("==> {what}");
            None
        };
        Self {
            bar,
            started: Instant::now(),
        }
    }

    /// How long the step has run.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Ends the step with the line `==> line` (the spinner goes away first).
    pub fn finish(self, line: impl AsRef<str>) {
        let line = format!("==> {}", line.as_ref());
        match &self.bar {
            Some(bar) => {
                bar.finish_and_clear();
                eprintln!("{line}");
            }
            None => eprintln!("{line}"),
        }
    }

    /// Runs `cmd` as part of this step. Without a spinner it writes to this process's
    /// output as it would alone; with one, its lines are printed above the spinner
    /// (with cargo's colours kept: `CARGO_TERM_COLOR=always` unless set).
    pub fn run(&self, cmd: &mut Command) -> std::io::Result<ExitStatus> {
        let Some(bar) = &self.bar else {
            return cmd.status();
        };
        if std::env::var_os("CARGO_TERM_COLOR").is_none() {
            cmd.env("CARGO_TERM_COLOR", "always");
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let forward = |stream: Option<Box<dyn Read + Send>>| {
            let bar = bar.clone();
            std::thread::spawn(move || {
                if let Some(stream) = stream {
                    for line in BufReader::new(stream).lines().map_while(Result::ok) {
                        bar.println(line);
                    }
                }
            })
        };
        let out = forward(
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        );
        let err = forward(
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn Read + Send>),
        );
        let status = child.wait();
        // The readers end when the child's pipes close (a grandchild holding them open
        // would keep them, so they are not waited for past the child's exit).
        let _ = (out.join(), err.join());
        status
    }
}

/// Seconds with one decimal, the way the step lines give durations.
pub fn seconds(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_terminal_a_step_runs_the_tool_as_is() {
        let step = Step::with_spinner("testing".into(), false);
        let status = step
            .run(Command::new("sh").args(["-c", "exit 3"]))
            .expect("running sh");
        assert_eq!(status.code(), Some(3));
        assert!(step.elapsed() < Duration::from_secs(60));
        step.finish("tested");
    }

    #[test]
    fn with_a_spinner_the_tools_output_is_read_through_and_its_status_kept() {
        let step = Step::with_spinner("testing".into(), true);
        let status = step
            .run(Command::new("sh").args(["-c", "echo out; echo err >&2; exit 4"]))
            .expect("running sh");
        assert_eq!(status.code(), Some(4));
        step.finish("tested");
    }

    #[test]
    fn seconds_have_one_decimal() {
        assert_eq!(seconds(Duration::from_millis(3_449)), "3.4 s");
        assert_eq!(seconds(Duration::from_millis(60)), "0.1 s");
    }
}
