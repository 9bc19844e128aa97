//! `neo-ffi-dl` owns run-time loading of optional system libraries — libibverbs,
//! libdpdk, Intel QPL — so that a binary built without them still runs, and can
//! say whether a node has them. Loading is the only unsafe operation here.

/// A library that was found and loaded; it stays loaded while this lives.
pub struct Loaded {
    /// The name that loaded, out of the candidates tried.
    pub name: String,
    _lib: libloading::Library,
}

/// Tries each candidate soname in order and returns the first that loads, or
/// the error of every attempt.
pub fn load_first(candidates: &[&str]) -> Result<Loaded, String> {
    let mut errors = Vec::new();
    for name in candidates {
        // SAFETY: loading runs the library's initialisers. The candidates are
        // well-known system libraries (libibverbs, librte_eal, libqpl) whose
        // initialisers only set up their own state; no symbol is called here.
        match unsafe { libloading::Library::new(name) } {
            Ok(lib) => {
                return Ok(Loaded {
                    name: (*name).to_string(),
                    _lib: lib,
                })
            }
            Err(e) => {
                let e = e.to_string();
                errors.push(if e.contains(name) {
                    e
                } else {
                    format!("{name}: {e}")
                });
            }
        }
    }
    Err(errors.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_libc_and_reports_every_missing_candidate() {
        let ok = load_first(&["libneo-does-not-exist.so.9", "libc.so.6"]).expect("libc loads");
        assert_eq!(ok.name, "libc.so.6");
        let err = load_first(&["libneo-nope-a.so", "libneo-nope-b.so"])
            .err()
            .expect("neither loads");
        assert!(
            err.contains("libneo-nope-a.so") && err.contains("libneo-nope-b.so"),
            "{err}"
        );
    }
}
