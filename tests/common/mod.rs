//! Shared by the test binaries (and the `run` fuzz target) that run sessions in-process;
//! not every binary uses every item.
#![allow(dead_code)]

use std::cell::RefCell;
use std::io::Write;
use std::rc::Rc;

/// Output collected in memory.
#[derive(Clone, Default)]
pub struct Captured(pub Rc<RefCell<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A session that prints nowhere, with the JIT on or off.
pub fn quiet_session(jit: bool) -> flx::Session {
    let options = flx::Options {
        seed: 0,
        step_limit: None,
        no_jit: !jit,
    };
    flx::Session::new(flx::StdHost::new(std::io::sink()), &options)
}
