//! Named points right after each side effect of a rotation, where a test build can stop the
//! process to prove that every step converges when run again after a crash.
//!
//! The switch exists only with the `crash-points` feature, which only the test suites enable
//! (as a dev-dependency feature, so `cargo build --release` and the Lambda packages never carry
//! it). There, `ROTATION_CRASH_AFTER=<point>` aborts the process right after that point, once:
//! `ROTATION_CRASH_MARKER=<path>` names a file created at the crash, and an existing file means
//! the crash already happened (the retry must get past the point).

/// The protocol's named points, in the order a rotation passes them. A target names the points
/// after its own side effects beside its code, and passes them to [`after`] the same way.
pub mod points {
    /// createSecret stored the pending value (`PutSecretValue`).
    pub const PENDING_STORED: &str = "pending-stored";
    /// finishSecret moved `AWSCURRENT` to the new version.
    pub const CURRENT_MOVED: &str = "current-moved";
    /// finishSecret removed `AWSPENDING` from the new version.
    pub const PENDING_REMOVED: &str = "pending-removed";
}

/// Stops the process here if a test build was asked to (see the module documentation).
#[cfg(feature = "crash-points")]
pub fn after(point: &str) {
    use std::sync::OnceLock;
    static REQUEST: OnceLock<Option<(String, std::path::PathBuf)>> = OnceLock::new();
    let request = REQUEST.get_or_init(|| {
        let point = std::env::var("ROTATION_CRASH_AFTER").ok()?;
        let marker = std::env::var_os("ROTATION_CRASH_MARKER")?;
        Some((point, marker.into()))
    });
    let Some((wanted, marker)) = request else {
        return;
    };
    if wanted != point {
        return;
    }
    // Creating the marker is what claims the one crash: a restarted process finds it.
    if std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(marker)
        .is_ok()
    {
        eprintln!("crash point {point}: aborting as the test asked");
        std::process::abort();
    }
}

/// Stops the process here if a test build was asked to; a no-op in every other build.
#[cfg(not(feature = "crash-points"))]
#[inline(always)]
pub fn after(_point: &str) {}
