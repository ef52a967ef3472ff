//! What each application applied, kept under the state directory, so prune deletes only what
//! this application put there (and still carries its label).

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, io};

fn file(state: &Path, app: &str) -> PathBuf {
    state.join("inventory").join(format!("{app}.json"))
}

/// The objects (identity stubs) the application's last sync applied; empty when never synced.
pub fn load(state: &Path, app: &str) -> Vec<Value> {
    std::fs::read(file(state, app))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

/// Stores the inventory whole or not at all.
pub fn save(state: &Path, app: &str, inventory: &[Value]) -> Result<(), Error> {
    let path = file(state, app);
    write_atomic(
        &path,
        Value::Array(inventory.to_vec()).to_string().as_bytes(),
    )
}

/// Writes through a temporary file and a rename, so a crash never leaves half a file.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    }
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).map_err(|e| io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io(path, e))
}
