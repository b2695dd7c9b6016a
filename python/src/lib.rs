//! `flx._flx`, the extension module under the `flx` Python package: a
//! `Session` with NumPy arrays in and out, flx's callables as Python
//! callables, diagnostics as `flx.FlxError`.
//!
//! An flx session is single-threaded (its values are `Rc`s) and wants a deep
//! stack, so each `Session` lives on a thread of its own (`Worker`); Python
//! sends it jobs and waits with the GIL released. Jobs take the GIL back only
//! to convert values and to print. Ctrl-C during a job raises the session's
//! interrupt flag (a SIGINT handler installed for the job's duration on the
//! main thread), so flx stops where it polls and Python gets a
//! `KeyboardInterrupt` with the session kept.

use std::cell::RefCell;
use std::collections::HashMap;
use std::io::{self, Write};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, OnceLock};

use flx::diag::Diag;
use flx::eval::format::repr;
use flx::host::Host;
use flx::outputs::{Outputs, RunInfo};
use flx::repl::{Failure, Repl};
use flx::{Options, StdHost, Value};
use ndarray::{ArcArray, IxDyn};
use numpy::{
    PyArrayDescrMethods, PyArrayDyn, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::exceptions::{
    PyKeyError, PyKeyboardInterrupt, PyRuntimeError, PyTypeError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::types::{IntoPyDict, PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};

/// The stack of a session's thread: as `flx run`'s, for deep recursion.
const STACK_BYTES: usize = 512 << 20;

/// Raised by SIGINT while a job runs: what flx polls.
static INTERRUPT: OnceLock<Arc<AtomicBool>> = OnceLock::new();
/// Whether a SIGINT came during the current job (flx lowers INTERRUPT once
/// it has stopped; this says to raise KeyboardInterrupt even so).
static SIGNALLED: AtomicBool = AtomicBool::new(false);

fn interrupt_flag() -> &'static Arc<AtomicBool> {
    INTERRUPT.get_or_init(|| Arc::new(AtomicBool::new(false)))
}

extern "C" fn on_sigint(_: libc::c_int) {
    SIGNALLED.store(true, Ordering::SeqCst);
    if let Some(flag) = INTERRUPT.get() {
        flag.store(true, Ordering::SeqCst);
    }
}

/// While alive, SIGINT raises the interrupt flag instead of Python's handler.
struct CatchSigint(Option<libc::sigaction>);

impl CatchSigint {
    /// Installed only on Python's main thread, where Python takes its signals.
    fn new(py: Python<'_>) -> CatchSigint {
        let main = py
            .import("threading")
            .and_then(|t| {
                let main = t.call_method0("main_thread")?.getattr("ident")?;
                let me = t.call_method0("get_ident")?;
                main.eq(me)
            })
            .unwrap_or(false);
        interrupt_flag().store(false, Ordering::SeqCst);
        SIGNALLED.store(false, Ordering::SeqCst);
        if !main {
            return CatchSigint(None);
        }
        // SAFETY: a plain handler that only stores to atomics; the previous
        // action is put back on drop.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_sigint as *const () as libc::sighandler_t;
            libc::sigemptyset(&mut action.sa_mask);
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGINT, &action, &mut old) != 0 {
                return CatchSigint(None);
            }
            CatchSigint(Some(old))
        }
    }
}

impl Drop for CatchSigint {
    fn drop(&mut self) {
        if let Some(old) = &self.0 {
            // SAFETY: restores the action saved in `new`.
            unsafe {
                libc::sigaction(libc::SIGINT, old, std::ptr::null_mut());
            }
        }
    }
}

type Job = Box<dyn FnOnce(&mut Engine) + Send>;

/// What a job sends the thread waiting for it: output to write (there, in
/// the caller's context, so that a notebook puts it under the right cell),
/// then its result.
enum Msg {
    Out(&'static str, String),
    Done(Box<dyn std::any::Any + Send>),
}

/// Where the running job's output goes (none between jobs).
type Outbox = Rc<RefCell<Option<mpsc::Sender<Msg>>>>;
/// Figures drawn and not yet shown: ("svg" or "png", bytes).
type Figures = Rc<RefCell<Vec<(String, Vec<u8>)>>>;

/// The thread a session lives on, fed jobs one at a time.
struct Worker {
    jobs: mpsc::Sender<Job>,
}

impl Worker {
    fn start(options: Options) -> PyResult<Arc<Worker>> {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("flx-session".into())
            .stack_size(STACK_BYTES)
            .spawn(move || {
                let mut engine = Engine::new(&options);
                for job in rx {
                    job(&mut engine);
                }
            })
            .map_err(|e| PyRuntimeError::new_err(format!("cannot start flx's thread: {e}")))?;
        Ok(Arc::new(Worker { jobs: tx }))
    }

    /// Send a job that needs no answer (forgetting a handle).
    fn post(&self, job: impl FnOnce(&mut Engine) + Send + 'static) {
        let _ = self.jobs.send(Box::new(job));
    }

    /// Run `f` on the session's thread and wait for it with the GIL
    /// released; Ctrl-C meanwhile stops it with KeyboardInterrupt.
    fn call<T: Send + 'static>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut Engine) -> PyResult<T> + Send + 'static,
    ) -> PyResult<T> {
        let (tx, rx) = mpsc::channel::<Msg>();
        self.post(move |e| {
            *e.out.borrow_mut() = Some(tx.clone());
            // A panic is a bug in flx: it fails the job, not the thread.
            let result = std::panic::catch_unwind(AssertUnwindSafe(|| f(e)));
            e.out.borrow_mut().take();
            if let Ok(r) = result {
                let _ = tx.send(Msg::Done(Box::new(r)));
            }
        });
        let sigint = CatchSigint::new(py);
        let mut rx = rx;
        let result = loop {
            let (msg, back) = py.detach(move || (rx.recv(), rx));
            rx = back;
            match msg {
                Ok(Msg::Out(stream, text)) => {
                    let _ = write_stream(py, stream, &text);
                }
                Ok(Msg::Done(r)) => break *r.downcast::<PyResult<T>>().expect("the job's type"),
                Err(_) => {
                    break Err(PyRuntimeError::new_err(
                        "flx failed inside (a panic): this is a bug in flx; the session may have lost the input's definitions",
                    ))
                }
            }
        };
        drop(sigint);
        if SIGNALLED.swap(false, Ordering::SeqCst) {
            interrupt_flag().store(false, Ordering::SeqCst);
            return Err(PyKeyboardInterrupt::new_err("flx: interrupted"));
        }
        result
    }
}

/// What lives on a session's thread: the REPL (and its session), the flx
/// values Python holds handles to, and the figures drawn since last asked.
struct Engine {
    repl: Repl,
    /// Where the current job's output goes.
    out: Outbox,
    handles: HashMap<u64, Value>,
    figures: Figures,
}

static NEXT_HANDLE: AtomicU64 = AtomicU64::new(1);

impl Engine {
    fn new(options: &Options) -> Engine {
        let figures = Rc::new(RefCell::new(Vec::new()));
        let out = Rc::new(RefCell::new(None));
        let make = {
            let options = options.clone();
            let (figures, out) = (figures.clone(), out.clone());
            move || {
                let host = PyHost {
                    inner: StdHost::new(PyStream::new("stdout", &out))
                        .interrupted_by(interrupt_flag().clone()),
                    stderr: PyStream::new("stderr", &out),
                    figures: figures.clone(),
                };
                let mut session = flx::Session::new(host, &options);
                session.redefine = true;
                session
            }
        };
        Engine {
            repl: Repl::embedded(make(), make),
            handles: HashMap::new(),
            figures,
            out,
        }
    }

    fn keep(&mut self, v: Value) -> u64 {
        let id = NEXT_HANDLE.fetch_add(1, Ordering::Relaxed);
        self.handles.insert(id, v);
        id
    }
}

/// Python's `sys.stdout` or `sys.stderr` as a writer, for flx's output:
/// whole lines go to the thread waiting for the job, which writes them.
struct PyStream {
    name: &'static str,
    out: Outbox,
    pending: String,
}

impl PyStream {
    fn new(name: &'static str, out: &Outbox) -> PyStream {
        PyStream {
            name,
            out: out.clone(),
            pending: String::new(),
        }
    }

    fn send(&mut self, upto: usize) {
        let text: String = self.pending.drain(..upto).collect();
        if let Some(tx) = &*self.out.borrow() {
            let _ = tx.send(Msg::Out(self.name, text));
        }
    }
}

impl Write for PyStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.push_str(&String::from_utf8_lossy(buf));
        if let Some(end) = self.pending.rfind('\n') {
            self.send(end + 1);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send(self.pending.len());
        Ok(())
    }
}

fn write_stream(py: Python<'_>, name: &str, text: &str) -> PyResult<()> {
    let stream = py.import("sys")?.getattr(name)?;
    stream.call_method1("write", (text,))?;
    stream.call_method0("flush")?;
    Ok(())
}

/// The command line's host, with output through Python's streams, notes on
/// its stderr and figures kept for the notebook to show.
struct PyHost {
    inner: StdHost,
    stderr: PyStream,
    figures: Figures,
}

impl Host for PyHost {
    fn print(&mut self, line: &str) -> io::Result<()> {
        self.inner.print(line)
    }
    fn read(&mut self, path: &Path) -> io::Result<Vec<u8>> {
        self.inner.read(path)
    }
    fn write(&mut self, path: &Path, bytes: &[u8]) -> io::Result<()> {
        self.inner.write(path, bytes)
    }
    fn may_write(&self) -> bool {
        self.inner.may_write()
    }
    fn elapsed(&self) -> std::time::Duration {
        self.inner.elapsed()
    }
    fn temporary_file(&mut self, extension: &str) -> PathBuf {
        self.inner.temporary_file(extension)
    }
    fn outputs(&mut self) -> Option<&mut Outputs> {
        self.inner.outputs()
    }
    fn open_outputs(&mut self, dir: &Path, info: RunInfo) -> io::Result<()> {
        self.inner.open_outputs(dir, info)
    }
    fn interrupt(&self) -> Option<Arc<AtomicBool>> {
        self.inner.interrupt()
    }
    fn note(&mut self, line: &str) {
        let _ = writeln!(self.stderr, "{line}");
    }
    fn figure(&mut self, path: &Path, bytes: &[u8]) {
        let format = match path.extension().and_then(|e| e.to_str()) {
            Some("png") => "png",
            _ => "svg",
        };
        self.figures
            .borrow_mut()
            .push((format.to_string(), bytes.to_vec()));
    }
}

// ---- errors -------------------------------------------------------------------

/// `flx.FlxError` for these diagnostics (KeyboardInterrupt for "interrupted").
fn flx_error(py: Python<'_>, session: &flx::Session, diags: &[Diag]) -> PyErr {
    if diags.iter().any(|d| d.code == "flx::run::interrupted") {
        return PyKeyboardInterrupt::new_err("flx: interrupted");
    }
    let rendered = session.render(diags, false);
    let first = diags.first();
    let (line, column) = first
        .and_then(|d| session.position(d))
        .map_or((None, None), |(l, c)| (Some(l), Some(c)));
    let code = first.map_or("flx::error", |d| d.code);
    let message = first.map_or(String::new(), |d| d.message.clone());
    raise(py, rendered.trim_end(), code, &message, line, column)
}

fn raise(
    py: Python<'_>,
    rendered: &str,
    code: &str,
    message: &str,
    line: Option<usize>,
    column: Option<usize>,
) -> PyErr {
    let made = py
        .import("flx._errors")
        .and_then(|m| m.getattr("FlxError"))
        .and_then(|cls| cls.call1((rendered, code, message, line, column)));
    match made {
        Ok(e) => PyErr::from_value(e),
        Err(e) => e,
    }
}

fn failure_error(py: Python<'_>, session: &flx::Session, f: &Failure) -> PyErr {
    match f {
        Failure::Diags(d) => flx_error(py, session, d),
        Failure::Usage(m) => raise(
            py,
            &format!("error: {m}"),
            "flx::repl::usage",
            m,
            None,
            None,
        ),
    }
}

// ---- values -------------------------------------------------------------------

/// A Python object as an flx value: numbers, strings, None, NumPy arrays
/// (float64, int64 and bool; other float and integer dtypes are converted),
/// lists, tuples, dicts with string keys (records) and handles of this
/// session's flx values.
fn to_flx(obj: &Bound<'_, PyAny>, engine: &Engine, depth: u32) -> PyResult<Value> {
    if depth > flx::eval::value::MAX_DEPTH {
        return Err(PyValueError::new_err(
            "lists, tuples and dicts nest too deeply for flx",
        ));
    }
    if obj.is_none() {
        return Ok(Value::None);
    }
    if obj.is_instance_of::<PyBool>() {
        return Ok(Value::Bool(obj.extract()?));
    }
    if obj.is_instance_of::<PyInt>() {
        return Ok(Value::Int(obj.extract()?));
    }
    if obj.is_instance_of::<PyFloat>() {
        return Ok(Value::Float(obj.extract()?));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::str(&s.to_cow()?));
    }
    if let Ok(h) = obj.cast::<Handle>() {
        let h = h.get();
        return engine.handles.get(&h.id).cloned().ok_or_else(|| {
            PyValueError::new_err(format!("this flx {} belongs to another Session", h.kind))
        });
    }
    if let Ok(a) = obj.cast::<PyUntypedArray>() {
        return array_to_flx(a);
    }
    let items = |it: &mut dyn Iterator<Item = Bound<'_, PyAny>>| {
        it.map(|x| to_flx(&x, engine, depth + 1))
            .collect::<PyResult<Vec<_>>>()
    };
    if let Ok(l) = obj.cast::<PyList>() {
        return Ok(Value::list(items(&mut l.iter())?));
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        return Ok(Value::tuple(items(&mut t.iter())?));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut fields = Vec::with_capacity(d.len());
        for (k, v) in d.iter() {
            let Ok(name) = k.extract::<String>() else {
                return Err(PyTypeError::new_err(format!(
                    "a dict becomes an flx record, whose field names are strings; this key is {}",
                    k.repr()?
                )));
            };
            if !is_identifier(&name) {
                return Err(PyValueError::new_err(format!(
                    "`{name}` cannot be a field name of an flx record (letters, digits and _, not first a digit)"
                )));
            }
            fields.push((name, to_flx(&v, engine, depth + 1)?));
        }
        return Ok(Value::record(fields));
    }
    // NumPy scalars (np.float32(1.0), np.int64(3)): as their Python value.
    let numpy_generic = obj
        .py()
        .import("numpy")
        .and_then(|np| np.getattr("generic"))
        .and_then(|g| obj.is_instance(&g))
        .unwrap_or(false);
    if numpy_generic {
        return to_flx(&obj.call_method0("item")?, engine, depth);
    }
    Err(PyTypeError::new_err(format!(
        "flx cannot take a {}: pass numbers, strings, None, NumPy arrays, lists, tuples, dicts or flx values",
        obj.get_type().name()?
    )))
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_')
        && !flx::syntax::lex::KEYWORDS.contains(&name)
}

/// A NumPy array as a tensor: copied once into flx's own storage (a
/// strided or reversed array is gathered in the same pass).
fn array_to_flx(a: &Bound<'_, PyUntypedArray>) -> PyResult<Value> {
    if let Ok(a) = a.cast::<PyArrayDyn<f64>>() {
        return Ok(Value::from(a.readonly().as_array().to_shared()));
    }
    if let Ok(a) = a.cast::<PyArrayDyn<i64>>() {
        return Ok(Value::from(a.readonly().as_array().to_shared()));
    }
    if let Ok(a) = a.cast::<PyArrayDyn<bool>>() {
        return Ok(Value::from(a.readonly().as_array().to_shared()));
    }
    let dtype = a.dtype();
    let target = match dtype.kind() {
        b'f' => "float64",
        b'i' | b'u' => "int64",
        _ => {
            return Err(PyTypeError::new_err(format!(
                "flx has no tensors of dtype {}: it takes float64, int64 and bool arrays (other float and integer dtypes are converted)",
                a.getattr("dtype")?.str()?
            )))
        }
    };
    if dtype.kind() == b'u' && dtype.itemsize() == 8 {
        let np = a.py().import("numpy")?;
        let max = a.call_method0("max")?;
        if a.len() > 0 && max.gt(np.getattr("iinfo")?.call1(("int64",))?.getattr("max")?)? {
            return Err(PyValueError::new_err(
                "this uint64 array holds values past int64's range",
            ));
        }
    }
    let converted = a.call_method1("astype", (target,))?;
    array_to_flx(converted.cast::<PyUntypedArray>()?)
}

/// The storage a NumPy array made from a tensor points into: a share of the
/// tensor's (thread-safe) buffer, kept alive by the array.
#[pyclass(frozen, module = "flx._flx")]
struct Buffer(#[allow(dead_code)] Storage);

#[allow(dead_code)] // held, never read: it keeps the buffer alive
enum Storage {
    Float(flx::tensor::Tensor),
    Int(flx::tensor::IntTensor),
    Bool(flx::tensor::BoolTensor),
}

/// A tensor as a read-only NumPy array over the same memory (no copy: flx
/// never writes into a buffer it shares, so the array cannot change under
/// Python; `np.array(a)` gives a writable copy).
fn tensor_to_numpy<'py>(py: Python<'py>, v: &Value) -> PyResult<Option<Bound<'py, PyAny>>> {
    let array = match v {
        Value::Tensor(t) => share(py, t, Storage::Float)?,
        Value::IntTensor(t) => share(py, t, Storage::Int)?,
        Value::BoolTensor(t) => share(py, t, Storage::Bool)?,
        _ => return Ok(None),
    };
    array.call_method("setflags", (), Some(&[("write", false)].into_py_dict(py)?))?;
    Ok(Some(array))
}

/// A NumPy array over `t`'s buffer, which a `Buffer` (`keep` of a share of
/// it) keeps alive.
fn share<'py, T: numpy::Element>(
    py: Python<'py>,
    t: &ArcArray<T, IxDyn>,
    keep: fn(ArcArray<T, IxDyn>) -> Storage,
) -> PyResult<Bound<'py, PyAny>> {
    let owner = Bound::new(py, Buffer(keep(t.clone())))?;
    // SAFETY: `owner` holds a share of `t`'s buffer, which is never
    // reallocated or written while shared.
    Ok(unsafe { PyArrayDyn::borrow_from_array(t, owner.into_any()) }.into_any())
}

/// An flx value as a Python object: numbers, strings and None as
/// themselves, tensors as NumPy arrays, lists, tuples, records as dicts,
/// ranges as `range`; anything else (functions, predictors, kernels,
/// models) as a `flx.Value` handle, callable where flx can call it.
fn to_python(
    py: Python<'_>,
    v: &Value,
    engine: &mut Engine,
    worker: &Arc<Worker>,
) -> PyResult<Py<PyAny>> {
    if let Some(a) = tensor_to_numpy(py, v)? {
        return Ok(a.unbind());
    }
    Ok(match v {
        Value::None => py.None(),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any().unbind(),
        Value::Int(i) => i.into_pyobject(py)?.into_any().unbind(),
        Value::Float(x) => x.into_pyobject(py)?.into_any().unbind(),
        Value::Str(s) => PyString::new(py, s).into_any().unbind(),
        Value::List(items) | Value::Tuple(items) => {
            let items = items
                .iter()
                .map(|x| to_python(py, x, engine, worker))
                .collect::<PyResult<Vec<_>>>()?;
            if let Value::List(_) = v {
                PyList::new(py, items)?.into_any().unbind()
            } else {
                PyTuple::new(py, items)?.into_any().unbind()
            }
        }
        Value::Record(r) => {
            let d = PyDict::new(py);
            for (name, x) in &r.fields {
                d.set_item(name.as_ref(), to_python(py, x, engine, worker)?)?;
            }
            d.into_any().unbind()
        }
        Value::Range(r) => py
            .import("builtins")?
            .getattr("range")?
            .call1((r.0, r.1))?
            .unbind(),
        other => {
            let kind = other.kind().to_string();
            let shown = repr(other);
            let id = engine.keep(other.clone());
            Py::new(
                py,
                Handle {
                    worker: worker.clone(),
                    id,
                    kind,
                    shown,
                },
            )?
            .into_any()
        }
    })
}

/// A job's flx result as Python's: the value converted, or the diagnostics raised.
fn answer(
    e: &mut Engine,
    worker: &Arc<Worker>,
    result: Result<Value, Vec<Diag>>,
) -> PyResult<Py<PyAny>> {
    Python::attach(|py| match result {
        Ok(v) => to_python(py, &v, e, worker),
        Err(d) => Err(flx_error(py, &e.repl.session(), &d)),
    })
}

/// Keyword arguments, to be converted on the session's thread.
fn keywords(kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<Vec<(String, Py<PyAny>)>> {
    match kwargs {
        Some(k) => k
            .iter()
            .map(|(k, v)| Ok((k.extract::<String>()?, v.unbind())))
            .collect(),
        None => Ok(Vec::new()),
    }
}

/// Keyword arguments as flx's named arguments.
fn named_to_flx(e: &Engine, kwargs: &[(String, Py<PyAny>)]) -> PyResult<Vec<(Rc<str>, Value)>> {
    Python::attach(|py| {
        kwargs
            .iter()
            .map(|(k, v)| Ok((Rc::from(k.as_str()), to_flx(v.bind(py), e, 0)?)))
            .collect()
    })
}

// ---- the Python classes ---------------------------------------------------------

/// An flx value with no Python equivalent (a function, predictor, kernel,
/// model). Calling it calls it in flx, with NumPy arrays in and out.
#[pyclass(frozen, name = "Value", module = "flx")]
struct Handle {
    worker: Arc<Worker>,
    id: u64,
    kind: String,
    shown: String,
}

#[pymethods]
impl Handle {
    #[pyo3(signature = (*args, **kwargs))]
    fn __call__(
        &self,
        py: Python<'_>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        let args: Vec<Py<PyAny>> = args.iter().map(Bound::unbind).collect();
        let kwargs = keywords(kwargs)?;
        let (id, worker) = (self.id, self.worker.clone());
        let name = format!("<python: {}>", self.kind);
        self.worker.call(py, move |e| {
            let f = e.handles.get(&id).cloned().expect("a live handle");
            let pos = Python::attach(|py| {
                args.iter()
                    .map(|a| to_flx(a.bind(py), e, 0))
                    .collect::<PyResult<Vec<_>>>()
            })?;
            let named = named_to_flx(e, &kwargs)?;
            let result = e.repl.session().call(&name, "f", &f, pos, named);
            answer(e, &worker, result)
        })
    }

    fn __repr__(&self) -> String {
        self.shown.clone()
    }

    /// The flx kind of the value (`Predictor`, `Function`, `Kernel`, ...).
    #[getter]
    fn kind(&self) -> String {
        self.kind.clone()
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        let id = self.id;
        self.worker.post(move |e| {
            e.handles.remove(&id);
        });
    }
}

static THREADS: OnceLock<usize> = OnceLock::new();

/// flx's interpreter. Names persist across `run` calls, and a name may be
/// defined again (as in the REPL).
#[pyclass(frozen, module = "flx")]
struct Session {
    worker: Arc<Worker>,
}

#[pymethods]
impl Session {
    #[new]
    #[pyo3(signature = (seed = 0, threads = None, jit = true))]
    fn new(seed: u64, threads: Option<usize>, jit: bool) -> PyResult<Session> {
        let wanted = threads.unwrap_or_else(flx::default_threads);
        if wanted == 0 {
            return Err(PyValueError::new_err("threads must be at least 1"));
        }
        let set = *THREADS.get_or_init(|| {
            flx::keep_freed_memory();
            flx::set_threads(wanted);
            wanted
        });
        if threads.is_some_and(|t| t != set) {
            return Err(PyValueError::new_err(format!(
                "flx's thread pool is process-wide and already has {set} threads"
            )));
        }
        let options = Options {
            seed,
            no_jit: !jit,
            ..Options::default()
        };
        Ok(Session {
            worker: Worker::start(options)?,
        })
    }

    /// Bind `name` in the session to a Python value (as `let` would).
    fn __setitem__(&self, py: Python<'_>, name: String, value: Py<PyAny>) -> PyResult<()> {
        if !is_identifier(&name) {
            return Err(PyKeyError::new_err(format!(
                "`{name}` is not an flx name (letters, digits and _, not first a digit, not a keyword)"
            )));
        }
        self.worker.call(py, move |e| {
            let v = Python::attach(|py| to_flx(value.bind(py), e, 0))?;
            e.repl.session().set(&name, v);
            Ok(())
        })
    }

    /// The value of a name of the session.
    fn __getitem__(&self, py: Python<'_>, name: String) -> PyResult<Py<PyAny>> {
        let worker = self.worker.clone();
        self.worker.call(py, move |e| {
            let v = e.repl.session().get(&name);
            Python::attach(|py| match v {
                Some(v) => to_python(py, &v, e, &worker),
                None => Err(PyKeyError::new_err(name.clone())),
            })
        })
    }

    fn __contains__(&self, py: Python<'_>, name: String) -> PyResult<bool> {
        self.worker
            .call(py, move |e| Ok(e.repl.session().get(&name).is_some()))
    }

    /// The session's names, in order of definition.
    fn names(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        self.worker.call(py, |e| {
            Ok(e.repl
                .session()
                .bindings()
                .into_iter()
                .map(|(n, _)| n.to_string())
                .collect())
        })
    }

    /// Run flx code; returns the value of its last statement.
    #[pyo3(signature = (code, name = "<python>"))]
    fn run(&self, py: Python<'_>, code: String, name: &str) -> PyResult<Py<PyAny>> {
        let worker = self.worker.clone();
        let name = name.to_string();
        self.worker.call(py, move |e| {
            let result = e.repl.session().run_source(&name, &code, Path::new("."));
            answer(e, &worker, result)
        })
    }

    /// Run a script, then its `proc main` with these overrides of its
    /// parameters (as `flx run FILE name=value`); returns main's value.
    #[pyo3(signature = (path, **overrides))]
    fn run_file(
        &self,
        py: Python<'_>,
        path: PathBuf,
        overrides: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Py<PyAny>> {
        let overrides = keywords(overrides)?;
        let worker = self.worker.clone();
        self.worker.call(py, move |e| {
            let named = named_to_flx(e, &overrides)?;
            let ran = e.repl.session().run_file(&path);
            let result = ran.and_then(|last| {
                let mut s = e.repl.session();
                if let Some(message) = named.iter().find_map(|(n, _)| s.override_error(n)) {
                    return Err(vec![Diag::new("flx::run::override", message)]);
                }
                match s.main_proc() {
                    Some(_) => s.call_main(named),
                    None => Ok(last),
                }
            });
            answer(e, &worker, result)
        })
    }

    /// Parse and check flx code without running it.
    fn check(&self, py: Python<'_>, code: String) -> PyResult<()> {
        self.worker.call(py, move |e| {
            let result = e
                .repl
                .session()
                .check_source("<python>", &code, Path::new("."));
            result.map_err(|d| Python::attach(|py| flx_error(py, &e.repl.session(), &d)))
        })
    }

    /// Run one notebook cell as the REPL runs an input: flx code or a
    /// meta-command (`:time`, `:type`, `:vars`, `:help`, ...). Returns the
    /// text the REPL prints as the value, or None.
    #[pyo3(signature = (code, name = "<cell>"))]
    fn run_cell(&self, py: Python<'_>, code: String, name: &str) -> PyResult<Option<String>> {
        let name = name.to_string();
        self.worker.call(py, move |e| {
            let result = e.repl.run_cell(&code, &name);
            result.map_err(|f| Python::attach(|py| failure_error(py, &e.repl.session(), &f)))
        })
    }

    /// Completions at byte `cursor` of `code`: (start, end, matches), the
    /// bytes the matches replace.
    fn complete(
        &self,
        py: Python<'_>,
        code: String,
        cursor: usize,
    ) -> PyResult<(usize, usize, Vec<String>)> {
        self.worker.call(py, move |e| {
            let (start, found) = e.repl.complete(&code, cursor);
            let end = cursor.min(code.len()).max(start);
            Ok((
                start,
                end,
                found.into_iter().map(|c| c.replacement).collect(),
            ))
        })
    }

    /// What `:help TOPIC` shows (None where there is nothing).
    fn help(&self, py: Python<'_>, topic: String) -> PyResult<Option<String>> {
        self.worker
            .call(py, move |e| Ok(e.repl.help_text(topic.trim()).ok()))
    }

    /// The figures drawn since the last call, as (format, bytes) with format
    /// "svg" or "png".
    fn take_figures(&self, py: Python<'_>) -> PyResult<Vec<(String, Vec<u8>)>> {
        self.worker
            .call(py, |e| Ok(std::mem::take(&mut *e.figures.borrow_mut())))
    }
}

#[pymodule]
fn _flx(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Session>()?;
    m.add_class::<Handle>()?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
