//! Shared by the test binaries (and the `run` fuzz target) that run sessions in-process.

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
