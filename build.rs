//! Records the git commit essbot is built from (`essbot --version`, the `essbot_build_info`
//! metric). A packager building outside git may set `ESSBOT_GIT_COMMIT` instead; without either
//! the commit reads "unknown".

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
}

fn main() {
    println!("cargo:rerun-if-env-changed=ESSBOT_GIT_COMMIT");
    let commit = match std::env::var("ESSBOT_GIT_COMMIT") {
        Ok(c) if !c.trim().is_empty() => Some(c.trim().to_owned()),
        _ => {
            // Rebuild when HEAD moves (a worktree has its own HEAD; the branch's ref is shared).
            for path in ["HEAD", "index"] {
                if let Some(p) = git(&["rev-parse", "--git-path", path]) {
                    println!("cargo:rerun-if-changed={p}");
                }
            }
            if let Some(r) = git(&["symbolic-ref", "-q", "HEAD"])
                .and_then(|r| git(&["rev-parse", "--git-path", &r]))
            {
                println!("cargo:rerun-if-changed={r}");
            }
            git(&["rev-parse", "--short=12", "HEAD"])
        }
    };
    if let Some(c) = commit {
        println!("cargo:rustc-env=ESSBOT_GIT_COMMIT={c}");
        println!(
            "cargo:rustc-env=ESSBOT_LONG_VERSION={} (commit {c})",
            std::env::var("CARGO_PKG_VERSION").unwrap_or_default()
        );
    }
}
