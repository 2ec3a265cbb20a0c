//! Finding what the contenders run: the nameko-rs binaries, the raw lapin baseline (built
//! on demand from `../shared/bench/raw-lapin`) and Python nameko (the virtual
//! environment of `scripts/python-env`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::{BenchError, Result};

/// Whether a contender's tool must be there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Skip its contenders.
    Skip,
    /// Use it if it is already there; skip its contenders otherwise.
    IfPresent,
    /// Make it if needed (build raw lapin, create the Python environment); skip its
    /// contenders, with a warning, if that fails.
    Provision,
    /// Make it if needed (the Python environment only with `NAMEKO_PYTHON_SETUP=1`), and
    /// fail if it cannot be had.
    Required,
}

impl Need {
    /// `Required` when the variable `var` is `1` or `true`, else `otherwise`.
    #[must_use]
    pub fn from_env(var: &str, otherwise: Self) -> Self {
        match std::env::var(var) {
            Ok(v) if v == "1" || v.eq_ignore_ascii_case("true") => Self::Required,
            _ => otherwise,
        }
    }

    fn provisions(self) -> bool {
        matches!(self, Self::Provision | Self::Required)
    }
}

/// The repository's root (where `scripts/` and `bench/` are).
#[must_use]
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// `../shared` beside the repository, or `NAMEKO_SHARED_DIR`.
#[must_use]
pub fn shared_dir() -> PathBuf {
    std::env::var_os("NAMEKO_SHARED_DIR")
        .map_or_else(|| repo_root().join("..").join("shared"), PathBuf::from)
}

/// The directory of the Python benchmark (`echo_service.py`, `bench_client.py`).
#[must_use]
pub fn python_bench_dir() -> PathBuf {
    shared_dir().join("bench").join("python-nameko")
}

/// The Python event client of this crate.
#[must_use]
pub fn event_client_script() -> PathBuf {
    repo_root()
        .join("bench")
        .join("python")
        .join("event_client.py")
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repo_root().join("target"), PathBuf::from)
}

/// The raw lapin binary: `NAMEKO_BENCH_RAW_LAPIN`, or built from the shared sources into
/// `target/raw-lapin` (their code is not copied anywhere).
///
/// # Errors
///
/// When it is needed and cannot be found or built.
pub fn raw_lapin(need: Need) -> Result<Option<PathBuf>> {
    if need == Need::Skip {
        return Ok(None);
    }
    if let Some(path) = std::env::var_os("NAMEKO_BENCH_RAW_LAPIN") {
        return Ok(Some(PathBuf::from(path)));
    }
    let target = target_dir().join("raw-lapin");
    let binary = target.join("release").join("raw-lapin");
    let manifest = shared_dir()
        .join("bench")
        .join("raw-lapin")
        .join("Cargo.toml");
    if binary.exists() {
        return Ok(Some(binary));
    }
    if !need.provisions() {
        eprintln!("note: raw lapin is not built ({})", binary.display());
        return Ok(None);
    }
    if !manifest.exists() {
        return missing(
            need,
            format!("no raw lapin sources at {}", manifest.display()),
        );
    }
    eprintln!("building raw lapin from {} ...", manifest.display());
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--locked",
            "--quiet",
            "--manifest-path",
        ])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target)
        .status();
    match status {
        Ok(s) if s.success() && binary.exists() => Ok(Some(binary)),
        Ok(s) => missing(need, format!("building raw lapin failed ({s})")),
        Err(e) => missing(need, format!("cannot run cargo: {e}")),
    }
}

/// The variable that lets a run that requires Python make its environment (`1`):
/// `scripts/python-env` then installs Python nameko from PyPI. Without it only an
/// environment that is already there is used.
pub const PYTHON_SETUP_VAR: &str = "NAMEKO_PYTHON_SETUP";

/// The Python with nameko 2.14 installed: `NAMEKO_BENCH_PYTHON`, or the environment of
/// `scripts/python-env`, which is made (installing from PyPI) for `Need::Provision`,
/// and for `Need::Required` when `NAMEKO_PYTHON_SETUP=1`; otherwise only an environment
/// already there is used.
///
/// # Errors
///
/// When it is required and cannot be had.
pub fn python(need: Need) -> Result<Option<PathBuf>> {
    if need == Need::Skip {
        return Ok(None);
    }
    let python = if let Some(path) = std::env::var_os("NAMEKO_BENCH_PYTHON") {
        PathBuf::from(path)
    } else {
        let make = need == Need::Provision
            || (need == Need::Required
                && Need::from_env(PYTHON_SETUP_VAR, Need::Skip) == Need::Required);
        let script = repo_root().join("scripts").join("python-env");
        let mut command = Command::new(&script);
        if !make {
            command.arg("--check");
        }
        match command.stdin(Stdio::null()).output() {
            Ok(out) if out.status.success() => {
                let text = String::from_utf8_lossy(&out.stdout);
                PathBuf::from(text.lines().last().unwrap_or_default().trim())
            }
            Ok(out) => {
                let err = String::from_utf8_lossy(&out.stderr);
                let why = err.lines().last().unwrap_or("no output").trim();
                return missing(
                    need,
                    if make {
                        format!("scripts/python-env failed: {why}")
                    } else {
                        format!("{why}, or set {PYTHON_SETUP_VAR}=1 to let the benchmark make it")
                    },
                );
            }
            Err(e) => return missing(need, format!("cannot run {}: {e}", script.display())),
        }
    };
    let works = Command::new(&python)
        .args(["-c", "import nameko, eventlet"])
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|out| out.status.success());
    if works {
        Ok(Some(python))
    } else {
        missing(
            need,
            format!("no Python with nameko at {}", python.display()),
        )
    }
}

fn missing<T>(need: Need, why: String) -> Result<Option<T>> {
    if need == Need::Required {
        Err(BenchError::new(why))
    } else {
        eprintln!("note: {why}");
        Ok(None)
    }
}
