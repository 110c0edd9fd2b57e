//! The plugin store: versioned `.wasm` artifacts kept content-addressed, so pipelines can
//! refer to `name@version` and runs can be replayed from a sha256 years later.
//!
//! ```text
//! .sluice/plugins/sha256/<hex>.wasm   the artifacts, named by their sha256
//! .sluice/plugins/index.json          name@version -> sha256 (versions are immutable)
//! ```
//! The store is project-local by default (`./.sluice/plugins`); `$SLUICE_PLUGIN_STORE` or
//! `--store` points elsewhere (a shared directory, a mounted bucket).

use std::path::{Path, PathBuf};

use crate::engine::Runtime;
use crate::error::{Error, Result};

/// One stored plugin version.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct StoredPlugin {
    /// The plugin's name (from its `info`).
    pub name: String,
    /// Its version.
    pub version: String,
    /// `sha256:<hex>` of its bytes.
    pub sha256: String,
    /// Its description.
    pub description: String,
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Index {
    plugins: Vec<StoredPlugin>,
}

/// A plugin store directory.
#[derive(Debug, Clone)]
pub struct PluginStore {
    root: PathBuf,
}

impl PluginStore {
    /// `$SLUICE_PLUGIN_STORE`, else `./.sluice/plugins`.
    pub fn default_location() -> PluginStore {
        let root = std::env::var_os("SLUICE_PLUGIN_STORE")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(".sluice").join("plugins"));
        PluginStore { root }
    }

    /// A store at `root`.
    pub fn at(root: impl Into<PathBuf>) -> PluginStore {
        PluginStore { root: root.into() }
    }

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn index_path(&self) -> PathBuf {
        self.root.join("index.json")
    }

    fn index(&self) -> Result<Index> {
        let p = self.index_path();
        match std::fs::read(&p) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| Error::usage(format!("plugin store index `{}` is unreadable: {e}", p.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Index::default()),
            Err(e) => Err(Error::io("read", &p, e)),
        }
    }

    /// Check a plugin (it must load in this host) and store it under its name and version.
    ///
    /// # Errors
    /// A usage error if the same `name@version` is already stored with other bytes:
    /// a published version never changes; bump the version instead.
    pub fn add(&self, rt: &Runtime, path: &Path) -> Result<StoredPlugin> {
        let plugin = rt.load_plugin(path)?;
        let info = plugin.info();
        let entry = StoredPlugin {
            name: info.name.clone(),
            version: info.version.clone(),
            sha256: info.sha256.clone(),
            description: info.description.clone(),
        };
        let mut index = self.index()?;
        if let Some(existing) = index
            .plugins
            .iter()
            .find(|p| p.name == entry.name && p.version == entry.version)
        {
            if existing.sha256 == entry.sha256 {
                return Ok(entry);
            }
            return Err(Error::usage(format!(
                "`{}@{}` is already in the store with {}, and `{}` is {}; a stored version never changes: bump the plugin's version",
                entry.name,
                entry.version,
                existing.sha256,
                path.display(),
                entry.sha256
            )));
        }
        let dest = self.artifact_path(&entry.sha256);
        std::fs::create_dir_all(dest.parent().expect("parent")).map_err(|e| Error::io("create directory", &dest, e))?;
        if !dest.exists() {
            let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
            crate::outdir::write_atomic(&dest, &bytes)?;
        }
        index.plugins.push(entry.clone());
        index
            .plugins
            .sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
        crate::outdir::write_atomic(
            &self.index_path(),
            &serde_json::to_vec_pretty(&index).expect("index serializes"),
        )?;
        Ok(entry)
    }

    /// Every stored plugin version.
    pub fn list(&self) -> Result<Vec<StoredPlugin>> {
        Ok(self.index()?.plugins)
    }

    /// Resolve `name@version` to its sha256 and artifact path.
    pub fn resolve(&self, name_version: &str) -> Result<(String, PathBuf)> {
        let Some((name, version)) = name_version.split_once('@') else {
            return Err(Error::usage(format!("`{name_version}` is not `name@version`")));
        };
        let index = self.index()?;
        let found = index
            .plugins
            .iter()
            .find(|p| p.name == name && p.version == version)
            .ok_or_else(|| {
                let known: Vec<String> = index
                    .plugins
                    .iter()
                    .filter(|p| p.name == name)
                    .map(|p| p.version.clone())
                    .collect();
                Error::usage(format!(
                    "plugin `{name_version}` is not in the store `{}`{}; add it with `sluice plugin add FILE.wasm`",
                    self.root.display(),
                    if known.is_empty() {
                        String::new()
                    } else {
                        format!(" (stored versions: {})", known.join(", "))
                    }
                ))
            })?;
        Ok((found.sha256.clone(), self.artifact_path(&found.sha256)))
    }

    /// The stored artifact with this sha256, if present.
    pub fn find(&self, sha256: &str) -> Option<PathBuf> {
        let p = self.artifact_path(sha256);
        p.exists().then_some(p)
    }

    fn artifact_path(&self, sha256: &str) -> PathBuf {
        self.root
            .join("sha256")
            .join(format!("{}.wasm", sha256.trim_start_matches("sha256:")))
    }
}
