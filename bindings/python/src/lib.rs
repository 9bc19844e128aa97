//! `neo-python` owns the native half of the `neo` Python package: PyO3
//! classes over Neo's Rust client (transport opened through `neo-c`). The
//! Python half (`python/neo/__init__.py`) adds delivery callbacks, context
//! managers, iterators and asyncio on top. Handles are `unsendable`: a
//! producer or consumer stays on the thread that made it, as the client does.
//!
//! Compiled only with the `python` feature (maturin turns it on), so a plain
//! workspace build needs no Python.
#![cfg(feature = "python")]

use std::time::Duration;

use neo_broker::client::{ClientError, Producer};
use neo_c::{AnyTransport, NeoConsumer};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

create_exception!(
    _neo,
    NeoError,
    PyException,
    "A Neo call failed: args are (code, message)."
);

fn neo_err(e: neo_c::NeoError) -> PyErr {
    NeoError::new_err((e.code() as i32, e.message().to_string()))
}

fn client_err(e: ClientError) -> PyErr {
    neo_err(neo_c::NeoError::from(e))
}

/// One delivery report: (tag, topic, partition, offset or -1, error message or None).
type Report = (u64, String, u32, i64, Option<String>);

/// Producer over Neo's client: records are tagged, reports come back by tag.
#[pyclass(unsendable)]
struct NativeProducer {
    inner: Producer<AnyTransport>,
}

impl NativeProducer {
    fn reports(&mut self) -> Vec<Report> {
        let mut out = Vec::new();
        for d in self.inner.take_deliveries() {
            let err = d.result.as_ref().err().map(|e| e.to_string());
            let base = d.result.as_ref().map_or(-1, |(b, _)| *b as i64);
            for (i, tag) in d.tags.iter().enumerate() {
                let offset = if base >= 0 { base + i as i64 } else { -1 };
                out.push((*tag, d.topic.to_string(), d.partition, offset, err.clone()));
            }
        }
        out
    }
}

#[pymethods]
impl NativeProducer {
    #[new]
    #[pyo3(signature = (bootstrap, transport, options=None))]
    fn new(bootstrap: &str, transport: &str, options: Option<&str>) -> PyResult<Self> {
        Ok(Self {
            inner: neo_c::connect_producer(bootstrap, transport, options).map_err(neo_err)?,
        })
    }

    #[pyo3(signature = (topic, value, key, partition, tag))]
    fn send(
        &mut self,
        topic: &str,
        value: &[u8],
        key: Option<&[u8]>,
        partition: Option<u32>,
        tag: u64,
    ) -> PyResult<()> {
        self.inner
            .send_tagged(topic, partition, key, value, &[], tag)
            .map_err(client_err)
    }

    fn poll(&mut self) -> PyResult<Vec<Report>> {
        self.inner.poll().map_err(client_err)?;
        Ok(self.reports())
    }

    /// Waits for every queued record; returns the reports and, if the wait
    /// failed, why (the reports are never lost to an exception).
    fn flush(&mut self, timeout_ms: u64) -> (Vec<Report>, Option<(i32, String)>) {
        let r = self.inner.flush(Duration::from_millis(timeout_ms));
        let reports = self.reports();
        let err = r.err().map(|e| {
            let e = neo_c::NeoError::from(e);
            (e.code() as i32, e.message().to_string())
        });
        (reports, err)
    }

    fn pending(&self) -> usize {
        self.inner.pending()
    }
}

/// (topic, partition, offset, timestamp ms, key, value)
type Record = (String, u32, u64, i64, Option<Py<PyBytes>>, Py<PyBytes>);

/// A consumer in a group, over Neo's client.
#[pyclass(unsendable)]
struct NativeConsumer {
    inner: NeoConsumer,
}

#[pymethods]
impl NativeConsumer {
    #[new]
    #[pyo3(signature = (bootstrap, transport, group, topics, options=None))]
    fn new(
        bootstrap: &str,
        transport: &str,
        group: &str,
        topics: Vec<String>,
        options: Option<&str>,
    ) -> PyResult<Self> {
        let list: Vec<&str> = topics.iter().map(String::as_str).collect();
        Ok(Self {
            inner: NeoConsumer::subscribe(bootstrap, transport, options, group, &list)
                .map_err(neo_err)?,
        })
    }

    fn poll(&mut self, py: Python<'_>, timeout_ms: u64) -> PyResult<Option<Record>> {
        let r = self
            .inner
            .poll(Duration::from_millis(timeout_ms))
            .map_err(neo_err)?;
        Ok(r.map(|r| {
            (
                r.topic.to_string(),
                r.partition,
                r.offset,
                r.timestamp,
                r.key.map(|k| PyBytes::new(py, &k).unbind()),
                PyBytes::new(py, &r.value).unbind(),
            )
        }))
    }

    fn commit(&mut self) -> PyResult<()> {
        self.inner.commit().map_err(neo_err)
    }

    fn close(&mut self) -> PyResult<()> {
        self.inner.close().map_err(neo_err)
    }
}

#[pymodule]
fn _neo(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<NativeProducer>()?;
    m.add_class::<NativeConsumer>()?;
    m.add("NeoError", m.py().get_type::<NeoError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
