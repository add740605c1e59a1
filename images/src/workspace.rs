//! The project's workspace as cargo sees it: its root, its target folder
//! and the resolved packages (among them the kernel source crate).

use anyhow::{Context, Result};
use std::path::PathBuf;

/// The workspace this tool belongs to.
pub struct Workspace {
    /// `cargo metadata` for the workspace, dependencies included.
    pub metadata: cargo_metadata::Metadata,
}

impl Workspace {
    /// Reads the metadata of the workspace that holds this crate.
    pub fn load() -> Result<Workspace> {
        let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../Cargo.toml");
        let metadata =
            cargo_metadata::MetadataCommand::new().manifest_path(manifest).exec().context("cargo metadata failed")?;
        Ok(Workspace { metadata })
    }

    /// The workspace root folder.
    pub fn root(&self) -> PathBuf {
        self.metadata.workspace_root.clone().into_std_path_buf()
    }

    /// Where the kernel builds, the Python venv and the seL4 programs go.
    pub fn sel4_dir(&self) -> PathBuf {
        self.metadata.target_directory.join("sel4").into_std_path_buf()
    }

    /// The Python venv that holds the kernel generator scripts' packages.
    pub fn python_venv(&self) -> PathBuf {
        self.sel4_dir().join("venv")
    }
}
