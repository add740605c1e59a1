//! Step-by-step progress lines, so a long first run never looks hung.

use std::time::Instant;

/// A named step of the build-and-boot pipeline: prints its name when it
/// starts and its duration when it ends.
#[must_use = "a step reports its duration when it is finished"]
pub struct Step {
    name: String,
    started: Instant,
}

impl Step {
    /// Announces `name` on standard error and starts its clock.
    pub fn start(name: impl Into<String>) -> Step {
        let name = name.into();
        eprintln!("==> {name} ...");
        Step { name, started: Instant::now() }
    }

    /// Reports the step as finished, with `detail` (for example "cached").
    pub fn finish(self, detail: &str) {
        let secs = self.started.elapsed().as_secs_f64();
        let sep = if detail.is_empty() { "" } else { ", " };
        eprintln!("==> {}: done in {secs:.1} s{sep}{detail}", self.name);
    }
}

/// Prints an informational line under the current step.
pub fn note(message: &str) {
    eprintln!("    {message}");
}
