//! On-disk cache of precompiled components.
//!
//! Compiling a component with Cranelift takes tens to hundreds of
//! milliseconds; deserialising a precompiled one is a `mmap`. Entries live in
//! `<dir>/<engine key>/<sha256 of the wasm>.cwasm`, where the engine key is a
//! digest of [`Engine::precompile_compatibility_hash`] — so a wasmtime upgrade
//! or a different engine configuration never loads an incompatible artefact,
//! and a changed plugin never loads a stale one. Writes go through a temporary
//! file and a rename, so a crash never leaves a truncated entry behind.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::PluginError;

/// Where a loaded component came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loaded {
    /// Deserialised from the on-disk cache: nothing was compiled.
    FromCache,
    /// Compiled now (and stored in the cache, if one is configured).
    Compiled,
}

/// The cache directory for one engine configuration.
#[derive(Debug, Clone)]
pub struct ComponentCache {
    dir: PathBuf,
}

/// Feeds `Hash` output into SHA-256, giving a digest that is stable across
/// processes (unlike `DefaultHasher`'s documented lack of guarantees).
struct Sha256Hasher(Sha256);

impl Hasher for Sha256Hasher {
    fn finish(&self) -> u64 {
        0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of a plugin's bytes, hex encoded.
pub fn wasm_digest(wasm: &[u8]) -> String {
    hex(&Sha256::digest(wasm))
}

impl ComponentCache {
    /// The cache for `engine` under `root`.
    pub fn new(root: &Path, engine: &Engine) -> Self {
        let mut hasher = Sha256Hasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let key = hex(&hasher.0.finalize()[..16]);
        ComponentCache {
            dir: root.join(key),
        }
    }

    /// The directory holding this engine's entries.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The entry path for a wasm digest.
    pub fn entry(&self, digest: &str) -> PathBuf {
        self.dir.join(format!("{digest}.cwasm"))
    }

    /// Loads `wasm` (whose digest is `digest`) from the cache, compiling and
    /// storing it on a miss. A corrupt entry is recompiled and replaced.
    pub fn load(
        &self,
        engine: &Engine,
        wasm: &[u8],
        digest: &str,
    ) -> Result<(Component, Loaded), PluginError> {
        let path = self.entry(digest);
        if path.is_file() {
            // SAFETY: entries are only ever written by `store` below from
            // `Engine::precompile_component` output for an engine with the same
            // compatibility hash; the cache directory belongs to the host and
            // is as trusted as the host binary itself.
            if let Ok(component) = unsafe { Component::deserialize_file(engine, &path) } {
                return Ok((component, Loaded::FromCache));
            }
        }
        let compiled = engine
            .precompile_component(wasm)
            .map_err(|e| PluginError::InvalidComponent(format!("{e:#}")))?;
        self.store(&path, &compiled)?;
        // SAFETY: `compiled` was produced just now by this very engine.
        let component = unsafe { Component::deserialize(engine, &compiled) }.map_err(|e| {
            PluginError::Runtime(format!("cannot load freshly compiled component: {e:#}"))
        })?;
        Ok((component, Loaded::Compiled))
    }

    fn store(&self, path: &Path, bytes: &[u8]) -> Result<(), PluginError> {
        let io = |source| PluginError::Io {
            path: path.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir).map_err(io)?;
        tmp.write_all(bytes).map_err(io)?;
        tmp.persist(path).map_err(|e| io(e.error))?;
        Ok(())
    }
}
