//! One module per command.

pub(crate) mod example;
pub(crate) mod types;
pub(crate) mod verify;

use std::io::Write;

/// How to print results.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Output {
    pub(crate) json: bool,
}

impl Output {
    /// Prints `value` as pretty JSON on stdout.
    pub(crate) fn print_json(&self, value: &serde_json::Value) -> anyhow::Result<()> {
        let mut stdout = std::io::stdout().lock();
        serde_json::to_writer_pretty(&mut stdout, value)?;
        writeln!(stdout)?;
        Ok(())
    }
}
