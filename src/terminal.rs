//! Reading a password from the terminal without echoing it.

use std::io::{BufRead, Write};

use rustix::termios::{self, LocalModes, OptionalActions};

#[derive(Debug)]
pub enum PromptError {
    NotATerminal,
    Io(std::io::Error),
}

impl std::fmt::Display for PromptError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PromptError::NotATerminal => f.write_str("standard input is not a terminal"),
            PromptError::Io(e) => write!(f, "reading the password: {e}"),
        }
    }
}

impl std::error::Error for PromptError {}

/// Prints `prompt` to stderr and reads one line from stdin with echo off.
pub fn prompt_hidden(prompt: &str) -> Result<String, PromptError> {
    let stdin = std::io::stdin();
    let original = termios::tcgetattr(&stdin).map_err(|_| PromptError::NotATerminal)?;
    let mut silent = original.clone();
    silent.local_modes.remove(LocalModes::ECHO);
    silent.local_modes.insert(LocalModes::ECHONL);
    eprint!("{prompt}");
    let _ = std::io::stderr().flush();
    termios::tcsetattr(&stdin, OptionalActions::Flush, &silent)
        .map_err(|e| PromptError::Io(e.into()))?;
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    // Restore echo whatever happened, or the user's shell stays silent.
    let _ = termios::tcsetattr(&stdin, OptionalActions::Flush, &original);
    read.map_err(PromptError::Io)?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}
