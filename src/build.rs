//! What the build knows about itself: the version, and the git commit it was built from when
//! the build script could tell (`build.rs`; a packager building outside git may set
//! `ESSBOT_GIT_COMMIT`).

/// The crate's version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The short git commit, or `"unknown"`.
pub const COMMIT: &str = match option_env!("ESSBOT_GIT_COMMIT") {
    Some(c) => c,
    None => "unknown",
};

/// `0.1.0 (commit 1a2b3c4d5e6f)`, or the bare version without a known commit: `essbot --version`.
pub const LONG_VERSION: &str = match option_env!("ESSBOT_LONG_VERSION") {
    Some(v) => v,
    None => VERSION,
};
