//! Writing to stdout for the commands that print (the CLI, `baton demo`): a closed pipe
//! (`baton crds | head -1`) ends the process quietly with exit 0, as the reader has all it
//! wanted, instead of `println!`'s panic.
use std::io::Write;

/// Write `text` to stdout; on a closed pipe exit 0 quietly, on another error exit 1 saying so.
pub fn emit(text: &str) {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        Err(e) => {
            eprintln!("error: writing to stdout: {e}");
            std::process::exit(1);
        }
    }
}
