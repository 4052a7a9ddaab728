//! Child processes the tests start (the camgate binary, the camera, nats-server): their output
//! as lines, a signal by name, bounded waits, a kill when a test fails half-way. Owns no
//! process of its own and knows nothing of what the children are.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Output};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The lines of `stream`, read on a thread of their own so a test can wait with a bound. The
/// thread ends at EOF or when the receiver is dropped.
pub fn lines(stream: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// Sends `signal` (`TERM`, `INT`) to `child`. The shell's built-in kill: present wherever
/// /bin/sh is, unlike procps' kill.
pub fn signal(child: &Child, signal: &str) {
    let status = Command::new("sh")
        .args(["-c", &format!("kill -{signal} {}", child.id())])
        .status()
        .expect("run /bin/sh");
    assert!(status.success(), "kill -{signal} {}", child.id());
}

/// Waits for `child` to exit; kills it and panics with `what` if `bound` passes first.
pub fn wait_exit(child: &mut Child, bound: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + bound;
    loop {
        if let Some(exit) = child.try_wait().expect("try_wait") {
            return exit;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} (within {bound:?})");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits for `child` with a bound and collects what it printed to piped stdout and stderr.
pub fn wait_output(mut child: Child, bound: Duration, what: &str) -> Output {
    wait_exit(&mut child, bound, &format!("{what} did not finish"));
    child.wait_with_output().expect("output")
}

/// A child killed (and reaped) when the test ends, however it ends.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
