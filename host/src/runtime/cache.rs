//! On-disk cache of precompiled components — native code, so it is guarded.
//!
//! Compiling a component with Cranelift takes tens to hundreds of
//! milliseconds; deserialising a precompiled one is a copy and a check.
//! Entries live in `<dir>/<engine key>/<sha256 of the wasm>.cwasm`, where the
//! engine key is a digest of [`Engine::precompile_compatibility_hash`] — so a
//! wasmtime upgrade or a different engine configuration never loads an
//! incompatible artefact, and a changed plugin never loads a stale one.
//!
//! A `.cwasm` file is machine code the host runs as itself: whoever can put a
//! file at that predictable path can run code as muster. Three guards:
//!
//! 1. **The directory is ours**: the cache root and its engine directory are
//!    created `0700`; an existing one owned by another user, or writable by
//!    group or others, is refused ([`PluginError::UnsafeCache`]) rather than
//!    trusted.
//! 2. **Every entry is authenticated**: each entry ends with an HMAC-SHA256
//!    tag over the engine key, the wasm digest and the compiled bytes, keyed by
//!    32 random bytes in `<dir>/cache.key` (`0600`, created on first use). An
//!    entry whose tag does not verify — planted, copied from another plugin's
//!    path, truncated, or written by an older muster — is ignored with a log
//!    line, recompiled and overwritten. The tag binds the digest, so a genuine
//!    entry of plugin B moved to plugin A's path does not verify either.
//! 3. **Verified bytes are the loaded bytes**: the file is read once into
//!    memory, verified, and deserialised from that buffer, so nothing can swap
//!    it between the check and the load.
//!
//! Writes go through a `0600` temporary file and a rename, so a crash never
//! leaves a truncated entry behind.

use std::fs::DirBuilder;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
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

/// The cache directory for one engine configuration, and the key that
/// authenticates its entries.
#[derive(Clone)]
pub struct ComponentCache {
    dir: PathBuf,
    engine_key: String,
    key: [u8; KEY_LEN],
}

impl std::fmt::Debug for ComponentCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ComponentCache")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// Length of the MAC key and of the tag appended to each entry.
const KEY_LEN: usize = 32;
const TAG_LEN: usize = 32;
/// Name of the key file in the cache root.
pub const KEY_FILE: &str = "cache.key";

type HmacSha256 = Hmac<Sha256>;

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
    /// Opens (creating if needed) the cache for `engine` under `root`: checks
    /// that the root and engine directories belong to this user and are not
    /// writable by others, and loads (or creates) the entry key.
    pub fn open(root: &Path, engine: &Engine) -> Result<Self, PluginError> {
        let mut hasher = Sha256Hasher(Sha256::new());
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_key = hex(&hasher.0.finalize()[..16]);
        private_dir(root)?;
        let dir = root.join(&engine_key);
        private_dir(&dir)?;
        let key = load_or_create_key(&root.join(KEY_FILE))?;
        Ok(ComponentCache {
            dir,
            engine_key,
            key,
        })
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
    /// storing it on a miss. An entry that does not verify is recompiled and
    /// replaced.
    pub fn load(
        &self,
        engine: &Engine,
        wasm: &[u8],
        digest: &str,
    ) -> Result<(Component, Loaded), PluginError> {
        let path = self.entry(digest);
        if let Some(component) = self.read_verified(engine, &path, digest) {
            return Ok((component, Loaded::FromCache));
        }
        let compiled = engine
            .precompile_component(wasm)
            .map_err(|e| PluginError::InvalidComponent(format!("{e:#}")))?;
        self.store(&path, digest, &compiled)?;
        // SAFETY: `compiled` was produced just now by this very engine.
        let component = unsafe { Component::deserialize(engine, &compiled) }.map_err(|e| {
            PluginError::Runtime(format!("cannot load freshly compiled component: {e:#}"))
        })?;
        Ok((component, Loaded::Compiled))
    }

    /// The entry at `path`, if it exists, carries a valid tag for `digest`
    /// and deserialises; otherwise `None` (with a log line saying why).
    fn read_verified(&self, engine: &Engine, path: &Path, digest: &str) -> Option<Component> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(entry = %path.display(), error = %e, "plugin cache: unreadable entry, recompiling");
                return None;
            }
        };
        let Some(body) = self.verify(digest, &bytes) else {
            tracing::warn!(
                entry = %path.display(),
                "plugin cache: entry not authenticated by this cache's key (planted, moved or \
                 corrupt); ignoring it, recompiling and overwriting it"
            );
            return None;
        };
        // SAFETY: `body` carries a valid HMAC under this cache's private key
        // for this engine key and wasm digest, so it is exactly what `store`
        // wrote from `Engine::precompile_component` output of an engine with
        // the same compatibility hash; it is deserialised from this very
        // buffer, not re-read from disk.
        match unsafe { Component::deserialize(engine, body) } {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::warn!(entry = %path.display(), error = %format!("{e:#}"), "plugin cache: entry does not load, recompiling");
                None
            }
        }
    }

    /// The tag of an entry: HMAC-SHA256 over engine key, digest and body.
    fn mac(&self, digest: &str) -> HmacSha256 {
        // Invariant: HMAC accepts keys of any length.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        for part in [self.engine_key.as_bytes(), digest.as_bytes()] {
            mac.update(&(part.len() as u64).to_le_bytes());
            mac.update(part);
        }
        mac
    }

    /// The compiled bytes of `entry` if its trailing tag verifies.
    fn verify<'e>(&self, digest: &str, entry: &'e [u8]) -> Option<&'e [u8]> {
        let split = entry.len().checked_sub(TAG_LEN)?;
        let (body, tag) = entry.split_at(split);
        let mut mac = self.mac(digest);
        mac.update(body);
        mac.verify_slice(tag).ok().map(|()| body)
    }

    fn store(&self, path: &Path, digest: &str, bytes: &[u8]) -> Result<(), PluginError> {
        let io = |source| PluginError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut mac = self.mac(digest);
        mac.update(bytes);
        let tag = mac.finalize().into_bytes();
        // `NamedTempFile` creates the file 0600.
        let mut tmp = tempfile::NamedTempFile::new_in(&self.dir).map_err(io)?;
        tmp.write_all(bytes).map_err(io)?;
        tmp.write_all(&tag).map_err(io)?;
        tmp.persist(path).map_err(|e| io(e.error))?;
        Ok(())
    }
}

/// The effective user id of this process.
fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Creates `dir` (and parents) `0700` if missing; refuses it if another user
/// owns it or group/others may write to it.
fn private_dir(dir: &Path) -> Result<(), PluginError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|source| PluginError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    let meta = std::fs::metadata(dir).map_err(|source| PluginError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    check_private(dir, &meta, 0o022, "writable by group or others")
}

/// Refuses `path` if not owned by this user or if `mode & forbidden != 0`.
fn check_private(
    path: &Path,
    meta: &std::fs::Metadata,
    forbidden: u32,
    what: &str,
) -> Result<(), PluginError> {
    let unsafe_cache = |reason: String| PluginError::UnsafeCache {
        path: path.to_path_buf(),
        reason,
    };
    if meta.uid() != euid() {
        return Err(unsafe_cache(format!(
            "owned by uid {}, not by this user (uid {})",
            meta.uid(),
            euid()
        )));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & forbidden != 0 {
        return Err(unsafe_cache(format!("mode {mode:03o} is {what}")));
    }
    Ok(())
}

/// Reads the cache key at `path`, creating it (`0600`, 32 random bytes) if
/// missing. An existing key must be ours, private and of the right length.
fn load_or_create_key(path: &Path) -> Result<[u8; KEY_LEN], PluginError> {
    let io = |source| PluginError::Io {
        path: path.to_path_buf(),
        source,
    };
    if !path.exists() {
        let mut key = [0u8; KEY_LEN];
        getrandom::getrandom(&mut key).map_err(|e| {
            io(std::io::Error::other(format!(
                "no randomness for the key: {e}"
            )))
        })?;
        let dir = path.parent().unwrap_or(Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io)?;
        tmp.write_all(&key).map_err(io)?;
        // Another process may have created it meanwhile: keep theirs.
        if let Err(e) = tmp.persist_noclobber(path)
            && e.error.kind() != std::io::ErrorKind::AlreadyExists
        {
            return Err(io(e.error));
        }
    }
    let meta = std::fs::metadata(path).map_err(io)?;
    check_private(
        path,
        &meta,
        0o077,
        "readable or writable by group or others",
    )?;
    let bytes = std::fs::read(path).map_err(io)?;
    <[u8; KEY_LEN]>::try_from(bytes.as_slice()).map_err(|_| PluginError::UnsafeCache {
        path: path.to_path_buf(),
        reason: format!(
            "the key must be {KEY_LEN} bytes, found {}; delete it to start a fresh cache",
            bytes.len()
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine() -> Engine {
        let mut c = wasmtime::Config::new();
        c.wasm_component_model(true);
        Engine::new(&c).unwrap()
    }

    #[test]
    fn directories_are_0700_and_the_key_0600() {
        let root = tempfile::tempdir().unwrap();
        let root = root.path().join("cache");
        let cache = ComponentCache::open(&root, &engine()).unwrap();
        for dir in [&root, &cache.dir] {
            let mode = std::fs::metadata(dir).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700, "{}", dir.display());
        }
        let key = root.join(KEY_FILE);
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
        // Reopening reads the same key.
        let again = ComponentCache::open(&root, &engine()).unwrap();
        assert_eq!(again.key, cache.key);
    }

    #[test]
    fn a_directory_writable_by_others_or_a_readable_key_is_refused() {
        let root = tempfile::tempdir().unwrap();
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = ComponentCache::open(root.path(), &engine()).unwrap_err();
        assert!(
            matches!(&err, PluginError::UnsafeCache { path, reason }
                if path == root.path() && reason.contains("777")),
            "{err:?}"
        );
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        ComponentCache::open(root.path(), &engine()).unwrap();
        let key = root.path().join(KEY_FILE);
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = ComponentCache::open(root.path(), &engine()).unwrap_err();
        assert!(
            matches!(&err, PluginError::UnsafeCache { path, .. } if *path == key),
            "{err:?}"
        );
    }

    #[test]
    fn a_tag_binds_the_digest_and_the_bytes() {
        let root = tempfile::tempdir().unwrap();
        let cache = ComponentCache::open(root.path(), &engine()).unwrap();
        let mut mac = cache.mac("aaaa");
        mac.update(b"code");
        let mut entry = b"code".to_vec();
        entry.extend_from_slice(&mac.finalize().into_bytes());
        assert_eq!(cache.verify("aaaa", &entry), Some(&b"code"[..]));
        assert_eq!(
            cache.verify("bbbb", &entry),
            None,
            "moved to another digest"
        );
        entry[0] ^= 1;
        assert_eq!(cache.verify("aaaa", &entry), None, "altered");
        assert_eq!(cache.verify("aaaa", b"short"), None);
    }
}
