//! Plugin bundles: a component and the read-only assets of that version as one file.
//!
//! A bundle is a tar archive holding exactly `kirana-bundle.json` (the manifest: the
//! component's and every asset's size and SHA-256), `component.wasm` and
//! `assets/<path>` for each asset. The registry stores a version's bytes as they were
//! uploaded, so a bundle is installed, replicated, enabled and rolled back as one; it
//! is split again whenever the version is loaded ([`split`]), and the assets live in
//! memory with that loaded version (`files.read-asset`), swapped with it.
//!
//! [`split`] trusts nothing in the archive: only regular files with those names, asset
//! paths that pass the `files` capability's rules, no duplicates, every size and
//! digest as the manifest says, and nothing the manifest does not list.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::capabilities::files::check_path;

pub const MANIFEST: &str = "kirana-bundle.json";
pub const COMPONENT: &str = "component.wasm";
const ASSETS_DIR: &str = "assets/";
/// Most assets one version may ship.
pub const MAX_ASSETS: usize = 4096;

pub use crate::core::{Asset, Assets};

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    format: u32,
    component: Entry,
    assets: Vec<AssetEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    size: u64,
    sha256: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct AssetEntry {
    path: String,
    size: u64,
    sha256: String,
}

fn digest(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Whether `bytes` are a bundle (a tar archive) rather than a bare component.
pub fn is_bundle(bytes: &[u8]) -> bool {
    bytes.get(257..262) == Some(b"ustar".as_slice())
}

/// Packs a bundle. The same inputs always give the same bytes (sorted, no times or
/// owners), so a rebuild with unchanged assets is the same version to the registry.
pub fn pack(component: &[u8], assets: &BTreeMap<String, Vec<u8>>) -> Result<Vec<u8>> {
    if assets.len() > MAX_ASSETS {
        bail!(
            "{} assets; a bundle holds at most {MAX_ASSETS}",
            assets.len()
        );
    }
    for path in assets.keys() {
        check_path(path)
            .map_err(|e| anyhow::anyhow!(crate::capabilities::error_text(&e).to_string()))?;
    }
    let manifest = Manifest {
        format: 1,
        component: Entry {
            size: component.len() as u64,
            sha256: digest(component),
        },
        assets: assets
            .iter()
            .map(|(path, data)| AssetEntry {
                path: path.clone(),
                size: data.len() as u64,
                sha256: digest(data),
            })
            .collect(),
    };
    let mut tar = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8]| -> Result<()> {
        let mut header = tar::Header::new_ustar();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, name, data)
            .with_context(|| format!("packing {name}"))
    };
    add(MANIFEST, &serde_json::to_vec_pretty(&manifest)?)?;
    add(COMPONENT, component)?;
    for (path, data) in assets {
        add(&format!("{ASSETS_DIR}{path}"), data)?;
    }
    Ok(tar.into_inner()?)
}

/// Packs `component` with every regular file under `dir` as its assets (paths
/// relative to `dir`, `/`-separated; hidden files are left out).
pub fn pack_dir(component: &[u8], dir: &Path) -> Result<Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) -> Result<()> {
        for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let path = entry.path();
            let kind = entry.file_type()?;
            if kind.is_dir() {
                walk(root, &path, out)?;
            } else if kind.is_file() {
                let rel = path
                    .strip_prefix(root)
                    .context("asset outside its directory")?
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                out.insert(rel, std::fs::read(&path)?);
            }
        }
        Ok(())
    }
    let mut assets = BTreeMap::new();
    walk(dir, dir, &mut assets)?;
    pack(component, &assets).with_context(|| format!("bundling the assets in {}", dir.display()))
}

/// The component and the assets of `bytes`: a bare component has none. The error says
/// what is wrong with the bundle.
pub fn split(bytes: Vec<u8>) -> Result<(Vec<u8>, Assets), String> {
    if !is_bundle(&bytes) {
        return Ok((bytes, Assets::new()));
    }
    let mut archive = tar::Archive::new(bytes.as_slice());
    let mut manifest: Option<Manifest> = None;
    let mut component: Option<Vec<u8>> = None;
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let entries = archive
        .entries()
        .map_err(|e| format!("the bundle is not a readable tar archive: {e}"))?;
    for entry in entries {
        let mut entry =
            entry.map_err(|e| format!("the bundle is not a readable tar archive: {e}"))?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(
                "a bundle holds regular files only (no links, devices or directories)".into(),
            );
        }
        let name = entry
            .path_bytes()
            .iter()
            .map(|&b| b as char)
            .collect::<String>();
        let size = entry.size();
        if size > bytes.len() as u64 {
            return Err(format!("{name}: its size is larger than the bundle"));
        }
        let mut data = Vec::with_capacity(size as usize);
        entry
            .read_to_end(&mut data)
            .map_err(|e| format!("{name}: {e}"))?;
        match name.as_str() {
            MANIFEST if manifest.is_none() => {
                manifest = Some(
                    serde_json::from_slice(&data)
                        .map_err(|e| format!("{MANIFEST} is not a bundle manifest: {e}"))?,
                );
            }
            COMPONENT if component.is_none() => component = Some(data),
            other => {
                let Some(path) = other.strip_prefix(ASSETS_DIR) else {
                    return Err(format!(
                        "{other:?} does not belong in a bundle ({MANIFEST}, {COMPONENT} and {ASSETS_DIR}... only, once each)"
                    ));
                };
                check_path(path).map_err(|e| {
                    format!("asset {path:?}: {}", crate::capabilities::error_text(&e))
                })?;
                if files.insert(path.to_string(), data).is_some() {
                    return Err(format!("asset {path:?} appears twice"));
                }
                if files.len() > MAX_ASSETS {
                    return Err(format!("a bundle holds at most {MAX_ASSETS} assets"));
                }
            }
        }
    }
    let manifest = manifest.ok_or_else(|| format!("the bundle has no {MANIFEST}"))?;
    let component = component.ok_or_else(|| format!("the bundle has no {COMPONENT}"))?;
    if manifest.format != 1 {
        return Err(format!(
            "bundle format {} is not known here (1 is)",
            manifest.format
        ));
    }
    if manifest.component.size != component.len() as u64
        || manifest.component.sha256 != digest(&component)
    {
        return Err(format!(
            "{COMPONENT} does not match the size and SHA-256 in {MANIFEST}"
        ));
    }
    if manifest.assets.len() != files.len() {
        return Err(format!(
            "{MANIFEST} lists {} assets but the bundle holds {}",
            manifest.assets.len(),
            files.len()
        ));
    }
    let mut assets = Assets::new();
    for listed in manifest.assets {
        let data = files
            .remove(&listed.path)
            .ok_or_else(|| format!("asset {:?} is listed but missing", listed.path))?;
        let sha256 = digest(&data);
        if listed.size != data.len() as u64 || listed.sha256 != sha256 {
            return Err(format!(
                "asset {:?} does not match the size and SHA-256 in {MANIFEST}",
                listed.path
            ));
        }
        assets.insert(
            listed.path,
            Asset {
                data: data.into(),
                sha256,
            },
        );
    }
    Ok((component, assets))
}

#[cfg(test)]
mod tests {
    use super::*;

    const WASM: &[u8] = b"\0asm\x0d\x00\x01\x00";

    fn assets() -> BTreeMap<String, Vec<u8>> {
        BTreeMap::from([
            ("index.html".to_string(), b"<!doctype html>".to_vec()),
            ("js/app.js".to_string(), b"export {}".to_vec()),
        ])
    }

    #[test]
    fn a_bundle_round_trips_and_packs_the_same_bytes_twice() {
        let bytes = pack(WASM, &assets()).unwrap();
        assert!(is_bundle(&bytes) && !is_bundle(WASM));
        assert_eq!(bytes, pack(WASM, &assets()).unwrap());
        let (component, got) = split(bytes).unwrap();
        assert_eq!(component, WASM);
        assert_eq!(got.len(), 2);
        assert_eq!(&*got["js/app.js"].data, b"export {}");
        assert_eq!(got["index.html"].sha256, digest(b"<!doctype html>"));
        // A bare component is its own bundle with no assets.
        let bare = WASM.to_vec();
        let (component, none) = split(bare).unwrap();
        assert_eq!((component.as_slice(), none.len()), (WASM, 0));
    }

    /// A tar written by hand, for the archives `pack` would never make.
    fn raw_tar(entries: &[(&str, &[u8], tar::EntryType)]) -> Vec<u8> {
        let mut tar = tar::Builder::new(Vec::new());
        for (name, data, kind) in entries {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_entry_type(*kind);
            h.set_mode(0o644);
            // Bypass the builder's own path checks: write the name bytes as given.
            h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            h.set_cksum();
            tar.append(&h, *data).unwrap();
        }
        tar.into_inner().unwrap()
    }

    fn manifest_for(assets: &[(&str, &[u8])]) -> Vec<u8> {
        serde_json::to_vec(&Manifest {
            format: 1,
            component: Entry {
                size: WASM.len() as u64,
                sha256: digest(WASM),
            },
            assets: assets
                .iter()
                .map(|(p, d)| AssetEntry {
                    path: p.to_string(),
                    size: d.len() as u64,
                    sha256: digest(d),
                })
                .collect(),
        })
        .unwrap()
    }

    #[test]
    fn hostile_bundles_are_refused_with_the_reason() {
        let r = tar::EntryType::Regular;
        let m = manifest_for(&[("a.txt", b"hi")]);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (
                raw_tar(&[
                    (MANIFEST, &m, r),
                    (COMPONENT, WASM, r),
                    ("assets/../../etc/x", b"hi", r),
                ]),
                "asset",
            ),
            (
                raw_tar(&[
                    (MANIFEST, &m, r),
                    (COMPONENT, WASM, r),
                    ("/etc/passwd", b"hi", r),
                ]),
                "does not belong",
            ),
            (
                raw_tar(&[
                    (MANIFEST, &m, r),
                    (COMPONENT, WASM, r),
                    ("assets/a.txt", b"", tar::EntryType::Symlink),
                ]),
                "regular files",
            ),
            (
                raw_tar(&[
                    (MANIFEST, &m, r),
                    (COMPONENT, WASM, r),
                    ("assets/a.txt", b"HI", r),
                ]),
                "does not match",
            ),
            (
                raw_tar(&[(MANIFEST, &m, r), (COMPONENT, WASM, r)]),
                "lists 1 assets",
            ),
            (
                raw_tar(&[
                    (MANIFEST, &m, r),
                    (COMPONENT, WASM, r),
                    ("assets/a.txt", b"hi", r),
                    ("assets/a.txt", b"hi", r),
                ]),
                "twice",
            ),
            (
                raw_tar(&[
                    (MANIFEST, &m, r),
                    (COMPONENT, b"\0asm-other", r),
                    ("assets/a.txt", b"hi", r),
                ]),
                COMPONENT,
            ),
            (
                raw_tar(&[(COMPONENT, WASM, r), ("assets/a.txt", b"hi", r)]),
                "no kirana-bundle.json",
            ),
            (raw_tar(&[(MANIFEST, b"{}", r)]), "not a bundle manifest"),
        ];
        for (bytes, needle) in cases {
            let err = split(bytes).unwrap_err();
            assert!(err.contains(needle), "{needle}: {err}");
        }
        let ok = raw_tar(&[
            (MANIFEST, &m, r),
            (COMPONENT, WASM, r),
            ("assets/a.txt", b"hi", r),
        ]);
        assert!(split(ok).is_ok());
    }

    #[test]
    fn packing_refuses_paths_the_files_rules_refuse() {
        let bad = BTreeMap::from([("../x".to_string(), vec![1])]);
        assert!(pack(WASM, &bad).is_err());
    }
}
